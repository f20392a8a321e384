import Hummingbird
import Synchronization

/// The routes the server registers, as `METHOD /path/{param}`: what `/openapi.json` must
/// document (a test compares the two), and what tells a 405 from a 404.
public final class RouteTable: Sendable {
    public struct Route: Sendable, Hashable, CustomStringConvertible {
        public var method: HTTPRequest.Method
        /// With `{name}` for each parameter, as OpenAPI writes paths.
        public var path: String

        public var description: String { "\(method.rawValue) \(path)" }
    }

    private let table = Mutex<[Route]>([])

    init() {}

    public var routes: [Route] { table.withLock { $0 } }

    func add(_ method: HTTPRequest.Method, _ path: String) {
        table.withLock { $0.append(Route(method: method, path: path)) }
    }

    /// The methods routes take at a concrete path (`/v1/runs/r123`).
    func methods(forPath path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        return routes.filter { route in
            let pattern = route.path.split(separator: "/", omittingEmptySubsequences: true)
            return pattern.count == segments.count
                && zip(pattern, segments).allSatisfy { expected, actual in
                    (expected.hasPrefix("{") && expected.hasSuffix("}")) || expected == actual
                }
        }.map(\.method)
    }
}
