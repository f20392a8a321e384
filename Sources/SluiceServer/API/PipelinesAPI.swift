import Foundation
import Hummingbird
import SluiceModel

/// `GET /v1/orgs/{org}/pipelines`: the project's pipelines (every org runs the same files),
/// with their params, schedule, and, for one that does not lint, its errors.
struct PipelinesAPI: Sendable {
    let server: APIServer

    struct PipelineResource: Encodable {
        var id: String
        var file: String
        var description: String?
        var valid: Bool
        var errors: [String]
        var schedule: String?
        var params: [Param]
        var links: [String: String]
    }

    struct Param: Encodable {
        var name: String
        var type: String
        var required: Bool
        var defaultValue: String?
        var description: String?

        enum CodingKeys: String, CodingKey {
            case name, type, required, description
            case defaultValue = "default"
        }
    }

    struct Listing: Encodable {
        var pipelines: [PipelineResource]
    }

    func list(_ request: Request, context: APIRequestContext) async throws -> Response {
        let org = try context.requireOrg(try context.parameters.require("org"))
        let pipelines = await server.catalog.all().map { entry in
            let definition = entry.plan?.definition
            return PipelineResource(
                id: entry.id, file: entry.file, description: definition?.description, valid: entry.plan != nil,
                errors: entry.diagnostics.filter { $0.severity == .error }.prefix(20).map(\.description),
                schedule: definition?.schedule?.cron?.description,
                params: (definition?.params ?? []).map {
                    Param(
                        name: $0.name.value, type: $0.type.rawValue, required: $0.required, defaultValue: $0.defaultValue?.scalarText,
                        description: $0.description)
                },
                links: ["runs": "/v1/orgs/\(org)/runs?pipeline=\(entry.id)", "trigger": "/v1/orgs/\(org)/pipelines/\(entry.id)/runs"])
        }
        return JSONResponse.make(Listing(pipelines: pipelines))
    }
}
