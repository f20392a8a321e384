import Foundation
import SluiceModel

/// The body of `POST …/runs`: `{"params": {name: value}, "logical_date": "YYYY-MM-DD"}`, both
/// optional, nothing else. Param values are strings, numbers or booleans (a run's params are
/// text; the pipeline's param types check them). An empty body means no params, today.
struct TriggerBody: Sendable {
    var params: [String: String] = [:]
    var logicalDate: String?

    static let fields: Set<String> = ["params", "logical_date"]

    /// Parses the body; malformed JSON is a 400, a well-formed body of the wrong shape a 422,
    /// each naming the field.
    static func parse(_ data: Data) throws(APIError) -> TriggerBody {
        var body = TriggerBody()
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return body }
        let object = try JSONBody.object(from: data)
        if let unknown = object.keys.sorted().first(where: { !fields.contains($0) }) {
            throw APIError.unprocessable(
                "invalid_body",
                "unknown field \(shown(unknown.prefix(64)))\(Suggestion.hint(for: unknown, in: fields)); the body takes params and logical_date")
        }
        switch object["params"] {
        case nil, .null?:
            break
        case .object(let map)?:
            for (name, value) in map {
                guard let text = value.scalarText else {
                    throw APIError.unprocessable("invalid_params", "params.\(name.prefix(64)) must be a string, number or boolean")
                }
                body.params[name] = text
            }
        default:
            throw APIError.unprocessable("invalid_body", "params must be an object of name: value")
        }
        switch object["logical_date"] {
        case nil, .null?:
            break
        case .string(let text)? where CalendarDate(parsing: text) != nil:
            body.logicalDate = text
        default:
            throw APIError.unprocessable("invalid_body", "logical_date must be a date as YYYY-MM-DD")
        }
        return body
    }
}

/// A JSON value, decoded strictly (a number is never a boolean, nor the reverse).
enum JSONValue: Decodable, Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let flag = try? container.decode(Bool.self) {
            self = .bool(flag)
        } else if let integer = try? container.decode(Int64.self) {
            self = .integer(integer)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else if let array = try? container.decode([JSONValue].self) {
            self = .array(array)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// A string, number or boolean as text; nil for null, arrays and objects.
    var scalarText: String? {
        switch self {
        case .string(let text): text
        case .integer(let integer): String(integer)
        case .number(let number): number.description
        case .bool(let flag): flag ? "true" : "false"
        case .null, .array, .object: nil
        }
    }
}

/// JSON request bodies: an object, or a 400 saying where the JSON breaks.
enum JSONBody {
    static func object(from data: Data) throws(APIError) -> [String: JSONValue] {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            // JSONDecoder says only "not valid JSON"; Foundation's parser says where.
            var detail = ""
            do {
                _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            } catch {
                if let text = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String, !text.isEmpty {
                    detail = ": " + text.prefix(160)
                }
            }
            throw APIError.badRequest("invalid_json", "the body is not valid JSON\(detail)")
        }
        guard case .object(let object) = value else {
            throw APIError.badRequest("invalid_json", "the body must be a JSON object")
        }
        return object
    }
}
