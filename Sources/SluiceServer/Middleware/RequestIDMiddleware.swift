import HTTPTypes
import Hummingbird

/// Gives every request an id: a sane incoming `X-Request-Id` (1–128 characters of letters,
/// digits and `-_.:`), else a new one. The id goes into the context (and so into error
/// bodies and runs the request starts), the log metadata and the `X-Request-Id` response
/// header.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    static let header = HTTPField.Name("X-Request-Id")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let id = request.headers[Self.header].flatMap(Self.accepted) ?? Self.generate()
        context.requestID = id
        context.logger[metadataKey: "request_id"] = "\(id)"
        // One id per request: Hummingbird's own (`context.id`) becomes ours too.
        context.logger[metadataKey: "hb.request.id"] = "\(id)"
        var response = try await next(request, context)
        response.headers[Self.header] = id
        return response
    }

    /// The incoming id when it is sane; nil for anything else (which is replaced, not refused:
    /// a client's bad id must not cost it its request).
    static func accepted(_ text: String) -> String? {
        guard (1...128).contains(text.utf8.count) else { return nil }
        let allowed = text.utf8.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":")
        }
        return allowed ? text : nil
    }

    /// `req_` and 20 random lowercase hex digits.
    static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = UInt64.random(in: 0 ... .max, using: &generator)
        let low = UInt16.random(in: 0 ... .max, using: &generator)
        let hex = String(high, radix: 16), tail = String(low, radix: 16)
        return "req_" + String(repeating: "0", count: 16 - hex.count) + hex + String(repeating: "0", count: 4 - tail.count) + tail
    }
}
