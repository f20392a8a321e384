import Foundation
import Hummingbird
import SluiceEngine
import SluiceModel
import SluiceStorage

/// `GET /healthz` (the one route without a token), `GET /metrics` and `GET /openapi.json`.
struct OperationsAPI: Sendable {
    let server: APIServer

    func health(_ request: Request, context: APIRequestContext) async throws -> Response {
        JSONResponse.make(["status": "ok"])
    }

    func metrics(_ request: Request, context: APIRequestContext) async throws -> Response {
        // The counters are served even when the store can't be read (locked, say): the gauge
        // then keeps its last values, and the log says why.
        do {
            server.metrics.recordRunCounts(try await server.store.runCounts())
        } catch {
            context.logger.error("/metrics: could not count the runs in the store: \(SecretRedactor.shared.redact("\(error)"))")
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: server.metrics.exposition())))
    }

    func openAPI(_ request: Request, context: APIRequestContext) async throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: OpenAPIDocument.bytes)))
    }
}

/// The committed OpenAPI 3.1 document (Sources/SluiceServer/Resources/openapi.json), compiled
/// into the binary so the server needs no resource files at run time.
public enum OpenAPIDocument {
    public static var bytes: [UInt8] { PackageResources.openapi_json }
}
