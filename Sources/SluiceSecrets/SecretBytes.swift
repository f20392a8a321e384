import Foundation

/// A secret value in memory: a credential's plaintext, or a data key on its way in or out of a
/// wrap. It owns one buffer and can overwrite it with zeros (`wipe()`), which also happens when
/// the last reference goes away. It never shows its bytes in `description`, `debugDescription`
/// or a `dump`, so a value that ends up in a log line or an error message prints as
/// `<secret, N bytes>`.
///
/// Copies made outside this type (a `Data` a caller builds from `withBytes`, a `String`) are
/// not covered: keep the bytes inside the closure.
public final class SecretBytes: @unchecked Sendable {
    // Guarded by `lock`. (Not a `Mutex`: lending the bytes to a closure that returns a
    // non-sendable result is the point of `withBytes`.)
    private var bytes: [UInt8]
    private let lock = NSLock()

    /// Takes a copy of `bytes`. Callers that hold the only other copy should wipe it.
    public init(_ bytes: some Sequence<UInt8>) {
        self.bytes = Array(bytes)
    }

    /// Takes the UTF-8 bytes of `text`.
    public convenience init(utf8 text: String) {
        self.init(text.utf8)
    }

    deinit {
        wipe()
    }

    public var count: Int { lock.withLock { bytes.count } }

    public var isEmpty: Bool { lock.withLock { bytes.isEmpty } }

    /// Whether `wipe()` ran (or the value was empty from the start).
    public var isWiped: Bool { isEmpty }

    /// Lends the bytes to `body` without copying them out.
    public func withBytes<Value, Failure: Error>(_ body: (UnsafeRawBufferPointer) throws(Failure) -> Value) throws(Failure) -> Value {
        lock.lock()
        defer { lock.unlock() }
        let outcome: Result<Value, Failure> = bytes.withUnsafeBytes { buffer in
            do throws(Failure) { return .success(try body(buffer)) } catch { return .failure(error) }
        }
        return try outcome.get()
    }

    /// Overwrites the buffer with zeros and empties it. Safe to call more than once.
    public func wipe() {
        lock.withLock {
            bytes.withUnsafeMutableBufferPointer { buffer in
                for index in buffer.indices { buffer[index] = 0 }
            }
            // Keep the (zeroed) allocation rather than handing it back with the old size.
            bytes.removeAll(keepingCapacity: true)
        }
    }

    /// Compares in time that depends only on the lengths, not on where the bytes differ.
    public func isEqual(to other: SecretBytes) -> Bool {
        if self === other { return true }
        return withBytes { mine in other.withBytes { theirs in Self.constantTimeEqual(mine, theirs) } }
    }

    /// Compares with raw bytes in time that depends only on the lengths.
    public func isEqual(to other: UnsafeRawBufferPointer) -> Bool {
        withBytes { mine in Self.constantTimeEqual(mine, other) }
    }

    static func constantTimeEqual(_ left: UnsafeRawBufferPointer, _ right: UnsafeRawBufferPointer) -> Bool {
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<left.count { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}

extension SecretBytes: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "<secret, \(count) bytes>" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .class) }
}
