import CZlib
import SluiceModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The text of a gzip file, inflated by zlib as it is read: compressed bytes are read in
/// chunks and inflated straight into the caller's buffer, so memory stays bounded whatever
/// the ratio. Members written one after another (`cat a.gz b.gz`) read as their concatenation.
/// A file that ends inside a member, or whose bytes are not gzip, fails with the file and the
/// byte offset in it where inflating stopped.
final class GzipStream {
    /// Compressed bytes asked of read(2) at a time.
    static let chunkBytes = 256 << 10

    /// Whether the first bytes are gzip's magic number (1f 8b).
    static func isGzip(_ descriptor: Int32) -> Bool {
        var magic: (UInt8, UInt8) = (0, 0)
        let got = withUnsafeMutableBytes(of: &magic) { pread(descriptor, $0.baseAddress, 2, 0) }
        return got == 2 && magic.0 == 0x1F && magic.1 == 0x8B
    }

    private let descriptor: Int32
    private let file: String
    /// Heap-allocated: zlib keeps a pointer to it.
    private let stream: UnsafeMutablePointer<z_stream>
    private let input: UnsafeMutablePointer<UInt8>
    /// Compressed bytes read from the file so far.
    private var fileOffset = 0
    private var endOfFile = false
    /// The last member ended and no byte of another has been inflated since: the end of the
    /// file is a clean end here, and only here.
    private var betweenMembers = false

    /// Inflates what `descriptor` (a gzip file, not owned: the caller closes it) holds.
    init(descriptor: Int32, file: String) throws(StepFailure) {
        self.descriptor = descriptor
        self.file = file
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        input = .allocate(capacity: Self.chunkBytes)
        // 15 + 16: the largest window, gzip wrapping (header and CRC-32 checked).
        let status = inflateInit2_(stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            input.deallocate()
            stream.deallocate()
            throw StepFailure(.unreadableInput, "can't start inflating gzip input file \(shown(file)) (zlib status \(status))")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
        input.deallocate()
    }

    /// Inflates up to `capacity` bytes into `buffer`; returns how many, 0 only at the end of
    /// the text.
    func read(into buffer: UnsafeMutablePointer<UInt8>, capacity: Int) throws(StepFailure) -> Int {
        while true {
            if stream.pointee.avail_in == 0 {
                if !endOfFile { try readCompressed() }
                if stream.pointee.avail_in == 0 {
                    if betweenMembers { return 0 }
                    throw damaged("the file ends in the middle of compressed data (is it truncated?)")
                }
            }
            stream.pointee.next_out = buffer
            stream.pointee.avail_out = UInt32(capacity)
            let afterMember = betweenMembers ? offset : nil
            betweenMembers = false
            let status = inflate(stream, Z_NO_FLUSH)
            let produced = capacity - Int(stream.pointee.avail_out)
            switch status {
            case Z_STREAM_END:
                // Another member may follow: its header is checked as it is inflated.
                betweenMembers = true
                inflateReset(stream)
            case Z_OK, Z_BUF_ERROR:
                break
            default:
                let reason = stream.pointee.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                if let afterMember {
                    throw damaged("what follows the end of the gzip data is not another gzip member (\(reason))", at: afterMember)
                }
                throw damaged("it is not valid gzip data (\(reason))")
            }
            if produced > 0 { return produced }
        }
    }

    private func readCompressed() throws(StepFailure) {
        while true {
            let got = readFile(descriptor, input, Self.chunkBytes)
            if got > 0 {
                stream.pointee.next_in = input
                stream.pointee.avail_in = UInt32(got)
                fileOffset += got
                return
            }
            if got == 0 {
                endOfFile = true
                return
            }
            if errno != EINTR {
                throw StepFailure(.unreadableInput, "reading \(file) failed: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Bytes of the file inflated so far: where inflating stands.
    private var offset: Int { fileOffset - Int(stream.pointee.avail_in) }

    /// The failure of a gzip file that can't be inflated, at the byte where inflating stopped.
    private func damaged(_ reason: String, at offset: Int? = nil) -> StepFailure {
        StepFailure(.unreadableInput, "gzip input file \(shown(file)) can't be read at byte \(offset ?? self.offset) of the file: \(reason)")
    }
}

/// read(2), under a name the stream's own `read` doesn't hide.
private func readFile(_ descriptor: Int32, _ buffer: UnsafeMutablePointer<UInt8>, _ count: Int) -> Int {
    read(descriptor, buffer, count)
}
