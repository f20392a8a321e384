import Foundation
import SluiceModel
import SluiceStorage

/// `ingest` with `format: http`: fetches pages of JSON from an API and streams the records at
/// `items` (a JSON pointer, default `/data`) into the staged table, following the pagination
/// (`cursor`, `page` or `link_header`). With `incremental`, the first request carries the
/// cursor the last successful run published (or `initial`), and the largest value of the
/// cursor column among the rows loaded is staged as the next cursor, to be published in the
/// same transaction as the tables.
struct HTTPSource {
    let source: YAMLNode
    let transport: any HTTPTransport
    let step: StepContext

    /// Loads every page; returns the source as messages name it.
    func load(into load: inout Load, fields: [String]) async throws -> String {
        let config = source
        let urlText = try config.text("url")
        guard let first = URL(string: urlText), let scheme = first.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw StepFailure.config("'url' must be an http or https URL", at: config["url"]?.location)
        }
        let method = try config.text("method")
        var headers: [(name: String, value: String)] = []
        for pair in config["headers"]?.mapping ?? [] {
            if let name = pair.key.scalarText, let value = pair.value.scalarText { headers.append((name, value)) }
        }
        let items = try config.text("items")
        let pagination = config["pagination"]
        // Without `pagination` there is one page; with it, its `type` (defaulted by the spec).
        let kind = try pagination.map { pagination throws(StepFailure) in try pagination.text("type") }
        // Without `pagination` the loop ends after the first page, as no next page is found.
        let maxPages = try pagination.map { pagination throws(StepFailure) in try pagination.integer("max_pages") } ?? Int.max
        let onLimit = try pagination.map { pagination throws(StepFailure) in try pagination.text("on_limit") } ?? "fail"
        let requestTimeout = try config.duration("request_timeout")
        let label = HTTPRequestSpec.shown(first)

        // The incremental cursor: where the last published run stopped.
        var cursorKey: String?
        var queryAdditions: [String: String] = [:]
        var newest: WarehouseValue?
        if let incremental = config["incremental"] {
            let column = try incremental.identifier("column")
            let parameter = try incremental.text("param")
            guard let index = load.columns.firstIndex(where: { $0.name == column }) else {
                throw StepFailure.config("incremental column '\(column)' is not in the schema", at: incremental["column"]?.location)
            }
            let key = "\(step.pipeline)/\(step.stepID)"
            cursorKey = key
            let stored = try await load.workspace.cursor(key) ?? incremental.optionalText("initial")
            if let stored { queryAdditions[parameter] = stored }
            let previous = load.observe
            load.observe = { row in
                previous?(row)
                if Self.isGreater(row[index], than: newest) { newest = row[index] }
            }
        }
        if let size = pagination?.optionalText("page_size") { queryAdditions["limit"] = size }

        var next: URL? = Self.url(first, adding: queryAdditions)
        var page = 1
        if kind == "page" { next = Self.url(first, adding: queryAdditions.merging([try Self.pageParameter(pagination): "1"]) { $1 }) }
        var pages = 0
        while let url = next, pages < maxPages {
            try Task.checkCancellation()
            pages += 1
            let request = HTTPRequestSpec(
                method: method, url: url, headers: headers, timeout: requestTimeout,
                destination: DestinationCheck.forField("source.url", of: step))
            let response = try await transport.send(request)
            if let failure = HTTPOutcome.failure(for: response, request: request, what: "page \(pages)") { throw failure }
            let before = load.read
            try await Self.records(of: response.body, items: items, fields: fields, name: "\(label) (page \(pages))", into: &load)
            let count = load.read - before
            switch kind {
            case "cursor":
                guard let path = pagination?.optionalText("cursor_path"), let parameter = pagination?.optionalText("cursor_param") else {
                    throw StepFailure.config("cursor pagination needs 'cursor_path' and 'cursor_param'", at: pagination?.location)
                }
                let value = try Self.pointer(path, in: response.body, name: "\(label) (page \(pages))")
                next = value.map { Self.url(first, adding: queryAdditions.merging([parameter: $0]) { $1 }) }
            case "page":
                page += 1
                next = count == 0 ? nil : Self.url(first, adding: queryAdditions.merging([try Self.pageParameter(pagination): "\(page)"]) { $1 })
            case "link_header":
                next = try Self.nextLink(response.header("Link"), relativeTo: url).map { try Self.sameOrigin($0, as: first, after: pages) }
            default:
                next = nil
            }
        }
        load.pages = pages
        if next != nil {
            // The API has more: stopping quietly would drop data and still look like success.
            let what = "\(label): read max_pages (\(maxPages)) pages and the API has a next page"
            guard onLimit == "warn" else {
                throw StepFailure(
                    .pageLimitReached,
                    "\(what); raise pagination.max_pages, or set pagination.on_limit: warn to keep what the first pages held",
                    at: pagination?["max_pages"]?.location)
            }
            step.logger.warning("\(what); the rest was not read (on_limit: warn)", metadata: ["pages_read": "\(pages)"])
        }
        if let cursorKey, let newest {
            try await load.workspace.stageCursor(cursorKey, value: newest.displayText)
        }
        return label
    }

    static func pageParameter(_ pagination: YAMLNode?) throws(StepFailure) -> String {
        guard let pagination else { throw StepFailure.config("page pagination needs 'pagination'") }
        return try pagination.text("page_param")
    }

    /// `base` with query parameters set (replacing ones of the same name).
    static func url(_ base: URL, adding parameters: [String: String]) -> URL {
        guard !parameters.isEmpty, var parts = URLComponents(url: base, resolvingAgainstBaseURL: false) else { return base }
        var items = (parts.queryItems ?? []).filter { parameters[$0.name] == nil }
        for name in parameters.keys.sorted() { items.append(URLQueryItem(name: name, value: parameters[name])) }
        parts.queryItems = items
        return parts.url ?? base
    }

    /// The records of one page, through the same streaming JSON reader as files, read from
    /// memory: a page never goes to disk, where other users could read it and a killed process
    /// would leave it.
    static func records(of body: Data, items: String, fields: [String], name: String, into load: inout Load) async throws {
        let reader = try JSONArrayReader(input: InputFile(bytes: body, file: name), fields: fields, items: items)
        try await load.records(from: reader, file: name)
    }

    /// The scalar at a JSON pointer in a page, as text; nil for a missing, null or empty one.
    static func pointer(_ path: String, in body: Data, name: String) throws -> String? {
        guard let document = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) else {
            throw StepFailure(.badResponse, "\(name) is not JSON")
        }
        var current: Any? = document
        for token in path.split(separator: "/", omittingEmptySubsequences: true) {
            let key = token.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            if let object = current as? [String: Any] {
                current = object[key]
            } else if let array = current as? [Any], let index = Int(key), array.indices.contains(index) {
                current = array[index]
            } else {
                return nil
            }
        }
        switch current {
        case let text as String: return text.isEmpty ? nil : text
        case let number as NSNumber: return number.stringValue
        default: return nil
        }
    }

    /// The `rel="next"` target of a `Link` header.
    static func nextLink(_ header: String?, relativeTo url: URL) -> URL? {
        guard let header else { return nil }
        for part in header.split(separator: ",") {
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let target = pieces.first, target.hasPrefix("<"), target.hasSuffix(">"),
                pieces.dropFirst().contains(where: {
                    $0.replacingOccurrences(of: " ", with: "").lowercased() == "rel=\"next\"" || $0.lowercased() == "rel=next"
                })
            else { continue }
            return URL(string: String(target.dropFirst().dropLast()), relativeTo: url)?.absoluteURL
        }
        return nil
    }

    /// A next-page link, if it stays on the scheme, host and port of `url`. Every page is
    /// fetched with the step's headers, secrets included: a server must not be able to send
    /// them to another host, or from https to http (which is why redirects aren't followed).
    static func sameOrigin(_ link: URL, as first: URL, after page: Int) throws -> URL {
        let origin = Origin(link), expected = Origin(first)
        guard origin == expected else {
            throw StepFailure(
                .httpLinkOtherOrigin,
                """
                page \(page): the Link header's next page is on \(origin), not on \(expected) where 'url' points; \
                the step's headers (and the secrets in them) go only to the origin of 'url', so the link was not followed
                """)
        }
        return link
    }

    /// Scheme, host and port of a URL, with the scheme's default port filled in.
    struct Origin: Equatable, CustomStringConvertible {
        var scheme: String
        var host: String
        var port: Int?

        init(_ url: URL) {
            scheme = url.scheme?.lowercased() ?? ""
            host = url.host?.lowercased() ?? ""
            port = url.port ?? ["http": 80, "https": 443][scheme]
        }

        var description: String { "\(scheme)://\(host)" + (port.map { ":\($0)" } ?? "") }
    }

    /// Orders values of one column: numbers numerically, text (canonical timestamps and
    /// dates sort as text) lexically; null never wins.
    static func isGreater(_ value: WarehouseValue, than current: WarehouseValue?) -> Bool {
        guard let current else { return value != .null }
        switch (value, current) {
        case (.integer(let a), .integer(let b)): return a > b
        case (.real(let a), .real(let b)): return a > b
        case (.integer(let a), .real(let b)): return Double(a) > b
        case (.real(let a), .integer(let b)): return a > Double(b)
        case (.text(let a), .text(let b)): return a > b
        default: return false
        }
    }
}
