import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A request as the fake server received it.
struct RecordedRequest: Sendable {
    var method: String
    /// Path and query, as sent on the request line.
    var uri: String
    var headers: [(name: String, value: String)]
    var body: Data

    var path: String { String(uri.prefix { $0 != "?" }) }
    var bodyText: String { String(decoding: body, as: UTF8.self) }

    func values(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    /// Every place a value could travel in: request line, each header, the body.
    var everything: String {
        ([method + " " + uri] + headers.map { "\($0.name): \($0.value)" } + [bodyText]).joined(separator: "\n")
    }
}

/// What a fake provider does with a request.
indirect enum ScriptedResponse: Sendable {
    /// A whole answer. `Content-Length` and `Connection: close` are added.
    case answer(Int, headers: [(String, String)] = [], body: String = "")
    /// Waits, then answers: a provider slower than the timeout when `wait` is long.
    case delayed(Duration, ScriptedResponse)
    /// Sends the head and the start of the body, then nothing for `wait`, then closes.
    case stalledBody(Int, start: String, wait: Duration)
    /// Sends the head announcing more body than follows, the start of the body, and closes.
    case closedMidResponse(Int, start: String)

    static func json(_ status: Int, _ body: String, headers: [(String, String)] = []) -> ScriptedResponse {
        .answer(status, headers: [("Content-Type", "application/json")] + headers, body: body)
    }
}

/// A real HTTP/1.1 server on 127.0.0.1 and an ephemeral port that behaves like a provider:
/// it records every request and answers from a script, byte by byte, so it can also be slow,
/// stall mid-body or drop the connection. Its access log (one line per request: method, URI,
/// status) is what a provider would keep, and tests grep it for keys.
final class FakeProviderServer: Sendable {
    typealias Script = @Sendable (_ request: RecordedRequest, _ index: Int) -> ScriptedResponse

    let port: Int
    private let channel: any Channel
    private let recorder: Recorder

    var baseURL: String { "http://127.0.0.1:\(port)" }
    var requests: [RecordedRequest] { recorder.state.withLock { $0.requests } }
    var accessLog: [String] { recorder.state.withLock { $0.log } }

    private init(port: Int, channel: any Channel, recorder: Recorder) {
        self.port = port
        self.channel = channel
        self.recorder = recorder
    }

    static func start(_ script: @escaping Script) async throws -> FakeProviderServer {
        let recorder = Recorder(script: script)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                recorder.state.withLock { $0.connections.append(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
                    try channel.pipeline.syncOperations.addHandler(FakeProviderHandler(recorder: recorder))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        guard let port = channel.localAddress?.port else { throw CancellationError() }
        return FakeProviderServer(port: port, channel: channel, recorder: recorder)
    }

    /// A server that answers every request the same way.
    static func start(answering response: ScriptedResponse) async throws -> FakeProviderServer {
        try await start { _, _ in response }
    }

    /// A server that answers the n-th request with the n-th response (the last one repeats).
    static func start(answering responses: [ScriptedResponse]) async throws -> FakeProviderServer {
        try await start { _, index in responses[min(index, responses.count - 1)] }
    }

    /// A port nobody listens on: bound by a server that is closed at once.
    static func refusedPort() async throws -> Int {
        let server = try await start(answering: .answer(200))
        await server.stop()
        return server.port
    }

    func stop() async {
        try? await channel.close()
        for connection in recorder.state.withLock({ $0.connections }) { try? await connection.close() }
    }

    final class Recorder: Sendable {
        struct State {
            var requests: [RecordedRequest] = []
            var log: [String] = []
            var connections: [any Channel] = []
        }

        let script: Script
        let state = Mutex(State())

        init(script: @escaping Script) { self.script = script }

        func received(_ request: RecordedRequest) -> ScriptedResponse {
            let index = state.withLock { state -> Int in
                state.requests.append(request)
                return state.requests.count - 1
            }
            let response = script(request, index)
            state.withLock { $0.log.append("\(request.method) \(request.uri) -> \(response.statusForLog)") }
            return response
        }
    }
}

extension ScriptedResponse {
    var statusForLog: String {
        switch self {
        case .answer(let status, _, _), .stalledBody(let status, _, _), .closedMidResponse(let status, _): return "\(status)"
        case .delayed(_, let then): return "\(then.statusForLog) (delayed)"
        }
    }
}

/// Reads requests off one connection and writes the scripted bytes back.
private final class FakeProviderHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = ByteBuffer

    let recorder: FakeProviderServer.Recorder
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    init(recorder: FakeProviderServer.Recorder) { self.recorder = recorder }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var part):
            body.writeBuffer(&part)
        case .end:
            guard let head else { return }
            let request = RecordedRequest(
                method: head.method.rawValue, uri: head.uri,
                headers: head.headers.map { (name: $0.name, value: $0.value) },
                body: Data(body.readableBytesView))
            respond(recorder.received(request), context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func respond(_ response: ScriptedResponse, context: ChannelHandlerContext) {
        let loop = context.eventLoop.assumeIsolated()
        switch response {
        case .delayed(let wait, let then):
            loop.scheduleTask(in: TimeAmount(wait)) {
                self.respond(then, context: context)
            }
        case .answer(let status, let headers, let text):
            write(head(status, headers, length: text.utf8.count) + text, context: context, thenClose: true)
        case .stalledBody(let status, let start, let wait):
            write(head(status, [], length: start.utf8.count + 100) + start, context: context, thenClose: false)
            loop.scheduleTask(in: TimeAmount(wait)) {
                context.close(promise: nil)
            }
        case .closedMidResponse(let status, let start):
            write(head(status, [("Content-Type", "application/json")], length: start.utf8.count + 1_000) + start, context: context, thenClose: true)
        }
    }

    private func head(_ status: Int, _ headers: [(String, String)], length: Int) -> String {
        var text = "HTTP/1.1 \(status) \(HTTPResponseStatus(statusCode: status).reasonPhrase)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        return text + "Content-Length: \(length)\r\nConnection: close\r\n\r\n"
    }

    private func write(_ text: String, context: ChannelHandlerContext, thenClose: Bool) {
        let buffer = context.channel.allocator.buffer(string: text)
        let written = context.writeAndFlush(wrapOutboundOut(buffer))
        guard thenClose else { return }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        written.whenComplete { _ in bound.value.close(promise: nil) }
    }
}
