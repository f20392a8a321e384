import Foundation
import SluiceModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A file read with read(2) into one buffer that the readers parse in place. Parsed bytes are
/// discarded on the next refill; the bytes of the record being parsed are kept (the buffer
/// grows for a record longer than a chunk, up to ``maxRecordBytes``). A file that starts with
/// gzip's magic bytes is inflated as it is read (``GzipStream``), whatever its name: the
/// readers, their line numbers and `bytesRead` see the decompressed text.
final class InputFile {
    /// Bytes asked of read(2) at a time.
    static let chunkBytes = 1 << 20
    /// A single record (and so the buffer) may not grow past this.
    static let maxRecordBytes = 64 << 20

    let file: String
    private let descriptor: Int32
    private(set) var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    /// Valid bytes in the buffer.
    private(set) var count = 0
    /// The input has no more bytes than those in the buffer.
    private(set) var atEnd = false
    /// Bytes of text read so far (for a gzip file, after inflating).
    private(set) var bytesRead = 0
    /// Inflates the file when it is gzip-compressed.
    private var gzip: GzipStream?

    /// Opens `path`; `file` is how messages name it.
    convenience init(path: String, file: String) throws(StepFailure) {
        let opened = open(path, O_RDONLY | O_CLOEXEC)
        guard opened >= 0 else {
            let code = errno
            if code == ENOENT {
                throw StepFailure(.missingInput, "input file \(file) does not exist")
            }
            throw StepFailure(.unreadableInput, "can't open input file \(file): \(String(cString: strerror(code)))")
        }
        try self.init(descriptor: opened, file: file)
    }

    /// Reads from `descriptor`, which it now owns (and closes, also when it throws): a regular
    /// file, such as `InputPath` opens.
    init(descriptor: Int32, file: String) throws(StepFailure) {
        self.file = file
        var status = stat()
        if fstat(descriptor, &status) == 0, status.st_mode & S_IFMT != S_IFREG {
            close(descriptor)
            if status.st_mode & S_IFMT == S_IFDIR {
                throw StepFailure(.unreadableInput, "input \(file) is a directory, not a file")
            }
            throw StepFailure(.unreadableInput, "input \(file) is not a regular file")
        }
        if GzipStream.isGzip(descriptor) {
            do {
                gzip = try GzipStream(descriptor: descriptor, file: file)
            } catch {
                close(descriptor)
                throw error
            }
        }
        self.descriptor = descriptor
        capacity = Self.chunkBytes
        base = .allocate(capacity: capacity)
    }

    /// The bytes of a whole document already in memory (a page of an HTTP API): nothing is
    /// written to disk, so nothing is left behind when the process is killed.
    init(bytes: Data, file: String) {
        self.file = file
        descriptor = -1
        capacity = max(bytes.count, 1)
        base = .allocate(capacity: capacity)
        bytes.withUnsafeBytes { raw in
            if let source = raw.bindMemory(to: UInt8.self).baseAddress { base.update(from: source, count: bytes.count) }
        }
        count = bytes.count
        bytesRead = bytes.count
        atEnd = true
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
        base.deallocate()
    }

    /// Drops the bytes before `keep` and reads more after the rest, which move to the start of
    /// the buffer: an index `i` ≥ `keep` becomes `i - keep`. Returns false when no more bytes
    /// can be kept because the record from `keep` on is longer than ``maxRecordBytes``.
    func refill(keeping keep: Int) throws(StepFailure) -> Bool {
        if keep > 0 {
            base.update(from: base + keep, count: count - keep)
            count -= keep
        }
        if count > capacity / 2, capacity < Self.maxRecordBytes {
            let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity * 2)
            grown.update(from: base, count: count)
            base.deallocate()
            base = grown
            capacity *= 2
        }
        if count == capacity { return false }
        while !atEnd {
            let got = try gzip?.read(into: base + count, capacity: capacity - count) ?? read(descriptor, base + count, capacity - count)
            if got > 0 {
                count += got
                bytesRead += got
                return true
            }
            if got == 0 {
                atEnd = true
            } else if errno != EINTR {
                throw StepFailure(.unreadableInput, "reading \(file) failed: \(String(cString: strerror(errno)))")
            }
        }
        return true
    }

    /// Skips a UTF-8 byte order mark at the start of the file; call before parsing anything.
    /// Returns the index parsing should start at.
    func skipByteOrderMark() throws(StepFailure) -> Int {
        while count < 3 && !atEnd {
            _ = try refill(keeping: 0)
        }
        if count >= 3, base[0] == 0xEF, base[1] == 0xBB, base[2] == 0xBF { return 3 }
        return 0
    }
}
