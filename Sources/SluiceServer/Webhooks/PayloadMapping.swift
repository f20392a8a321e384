import Foundation
import SluiceModel

/// Which payload fields become a webhook run's params and logical date. It lives in the
/// hook secret's metadata (in clear, next to the sealed `whsec_…` value):
/// `{"param_usage_file": "data.usage_file", "logical_date": "data.day"}` takes param
/// `usage_file` from `payload.data.usage_file`. Paths are dot-separated object keys and
/// array indexes. A field the payload lacks leaves the param to its default.
public struct PayloadMapping: Sendable, Hashable {
    public static let paramPrefix = "param_"

    public var params: [String: [String]] = [:]
    public var logicalDate: [String]?

    public init(params: [String: [String]] = [:], logicalDate: [String]? = nil) {
        self.params = params
        self.logicalDate = logicalDate
    }

    /// The mapping in a hook's metadata; other metadata fields (owner, description) are not
    /// part of it.
    public init(metadata: String) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(metadata.utf8))) as? [String: Any] else { return }
        for (key, value) in object {
            guard let path = value as? String, !path.isEmpty else { continue }
            let components = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            if key == "logical_date" {
                logicalDate = components
            } else if key.hasPrefix(Self.paramPrefix), key.count > Self.paramPrefix.count {
                params[String(key.dropFirst(Self.paramPrefix.count))] = components
            }
        }
    }

    /// The metadata that holds this mapping.
    public var metadata: [String: String] {
        var fields: [String: String] = [:]
        for (name, path) in params { fields[Self.paramPrefix + name] = path.joined(separator: ".") }
        if let logicalDate { fields["logical_date"] = logicalDate.joined(separator: ".") }
        return fields
    }

    /// The params and logical date a payload gives.
    func apply(to payload: [String: JSONValue]) throws(APIError) -> (params: [String: String], logicalDate: String?) {
        var values: [String: String] = [:]
        for (name, path) in params.sorted(by: { $0.key < $1.key }) {
            guard let value = Self.value(at: path, in: .object(payload)) else { continue }
            guard let text = value.scalarText else {
                throw APIError.unprocessable(
                    "invalid_payload", "payload field \(path.joined(separator: ".")) (param '\(name)') must be a string, number or boolean")
            }
            values[name] = text
        }
        var date: String?
        if let path = logicalDate, let value = Self.value(at: path, in: .object(payload)) {
            let field = path.joined(separator: ".")
            guard case .string(let text) = value else {
                throw APIError.unprocessable("invalid_payload", "payload field \(field) (logical_date) must be a date as YYYY-MM-DD")
            }
            // A timestamp's day will do: 2026-03-01T02:30:00Z is for 2026-03-01.
            let day = String(text.prefix(10))
            guard CalendarDate(parsing: day) != nil, text.count == 10 || text.dropFirst(10).hasPrefix("T") else {
                throw APIError.unprocessable(
                    "invalid_payload", "payload field \(field) (logical_date) must be a date as YYYY-MM-DD, not \(shown(text.prefix(40)))")
            }
            date = day
        }
        return (values, date)
    }

    private static func value(at path: [String], in root: JSONValue) -> JSONValue? {
        var current = root
        for component in path {
            switch current {
            case .object(let object):
                guard let next = object[component] else { return nil }
                current = next
            case .array(let array):
                guard let index = Int(component), array.indices.contains(index) else { return nil }
                current = array[index]
            default:
                return nil
            }
        }
        if case .null = current { return nil }
        return current
    }
}
