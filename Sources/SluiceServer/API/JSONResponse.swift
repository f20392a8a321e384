import Foundation
import Hummingbird

/// JSON bodies the way the API writes them: snake_case keys (declared by each type), sorted,
/// dates as ISO 8601 with milliseconds in UTC.
enum JSONResponse {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(timestamp(date))
        }
        return encoder
    }()

    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        // Encoding these plain value types can't fail; if it did, say so without details.
        let data = (try? encoder.encode(value)) ?? Data(#"{"error":{"code":"internal_error","message":"the response could not be encoded"}}"#.utf8)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
