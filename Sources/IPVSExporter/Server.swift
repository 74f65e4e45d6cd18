// The exporter's HTTP server: SwiftNIO's HTTP/1 codec on one event loop. Every answer comes
// from memory (`ExporterState`), so one thread serves every scraper; a slow or hostile
// client costs a socket and a timer, never the loop.
import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Where and how the exporter listens.
public struct ServerSettings: Sendable {
    public var host: String
    public var port: Int
    /// Connections open at once at most. A new one beyond them closes the oldest that has
    /// not been answered yet (else the oldest idle one): a flood of silent connections
    /// cannot keep a scraper out, and a scraper's connection is answered within
    /// milliseconds of its request.
    public var maxConnections: Int
    /// A request must arrive whole within this many seconds of the connection (or of the
    /// previous answer on a kept-alive connection); else the connection is closed.
    public var requestTimeout: Double

    public init(host: String = "127.0.0.1", port: Int = ExporterServer.defaultPort, maxConnections: Int = 64, requestTimeout: Double = 10) {
        self.host = host
        self.port = port
        self.maxConnections = maxConnections
        self.requestTimeout = requestTimeout
    }

    /// Parses `HOST:PORT`, `[V6]:PORT` or `:PORT` (every address).
    public static func parse(listen: String) -> (host: String, port: Int)? {
        guard let colon = listen.lastIndex(of: ":") else { return nil }
        var host = String(listen[..<colon])
        guard let port = Int(listen[listen.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "::" }
        if host.contains(":") && listen.first != "[" && host != "::" { return nil }
        return (host, port)
    }
}

public final class ExporterServer: Sendable {
    /// 18440: outside 9100-9999, the range Prometheus's default-port allocation list gave
    /// exporters (full since 2023, so any port there is some registered exporter's), and
    /// not in /etc/services (IANA's registry as Debian ships it).
    public static let defaultPort = 18440

    public let settings: ServerSettings
    public let state: ExporterState
    let group: MultiThreadedEventLoopGroup
    let channel: Mutex<Channel?> = Mutex(nil)
    /// The open connections, for the limit: each with its arrival number and whether it
    /// has been answered at least once.
    let connections = Mutex<Connections>(Connections())

    struct Connections {
        var next = 0
        var open: [ObjectIdentifier: (channel: Channel, seq: Int, answered: Bool)] = [:]

        /// The connection to close for a new one: the oldest never answered, else the oldest.
        func victim() -> Channel? {
            let unanswered = open.values.filter { !$0.answered }
            return (unanswered.isEmpty ? Array(open.values) : unanswered).min { $0.seq < $1.seq }?.channel
        }
    }

    public init(settings: ServerSettings, state: ExporterState) {
        self.settings = settings
        self.state = state
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    /// Binds the listening socket; returns the address bound (the port chosen when 0 was asked).
    public func start() throws -> String {
        let limits: NIOHTTPDecoderLimitConfiguration = {
            var l = NIOHTTPDecoderLimitConfiguration()
            // A scraper sends a few hundred bytes of headers; 16 KiB is plenty and bounds what
            // 64 connections can make the exporter hold.
            l.maxHeaderFieldSize = 8 << 10
            l.maxHeaderListSize = 16 << 10
            l.maxHeaderFieldCount = 100
            return l
        }()
        let max = settings.maxConnections
        let timeout = TimeAmount.milliseconds(Int64(settings.requestTimeout * 1000))
        let state = self.state
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { [self] channel in
                let id = ObjectIdentifier(channel)
                let victim = connections.withLock { c -> Channel? in
                    let v = c.open.count >= max ? c.victim() : nil
                    if let v { c.open[ObjectIdentifier(v)] = nil }
                    c.next += 1
                    c.open[id] = (channel, c.next, false)
                    return v
                }
                if let victim {
                    state.countEvicted()
                    victim.close(promise: nil)
                }
                channel.closeFuture.whenComplete { [self] _ in _ = connections.withLock { $0.open.removeValue(forKey: id) } }
                let answered: @Sendable () -> Void = { [self] in connections.withLock { $0.open[id]?.answered = true } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withErrorHandling: true, withOutboundHeaderValidation: true,
                        withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits)
                    try channel.pipeline.syncOperations.addHandler(RequestHandler(state: state, timeout: timeout, answered: answered))
                }
            }
        let ch = try bootstrap.bind(host: settings.host, port: settings.port).wait()
        channel.withLock { $0 = ch }
        guard let a = ch.localAddress else { return "\(settings.host):\(settings.port)" }
        let host = a.ipAddress ?? settings.host
        return (host.contains(":") ? "[\(host)]" : host) + ":\(a.port ?? settings.port)"
    }

    /// Connections open now.
    public var openConnections: Int { connections.withLock { $0.open.count } }

    /// Blocks until the server is stopped.
    public func wait() {
        let ch = channel.withLock { $0 }
        try? ch?.closeFuture.wait()
    }

    public func stop() {
        let ch = channel.withLock { $0 }
        try? ch?.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// Answers `GET /metrics`, `GET /` and HEAD of both; anything else gets a 4xx. One per
/// connection, on the event loop.
final class RequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let state: ExporterState
    let timeout: TimeAmount
    /// Tells the server's connection list that this one was answered.
    let answered: @Sendable () -> Void
    var head: HTTPRequestHead?
    var bodyBytes = 0
    var deadline: Scheduled<Void>?
    /// A request body is never needed: more than this and the connection goes.
    static let maxBody = 16 << 10

    init(state: ExporterState, timeout: TimeAmount, answered: @escaping @Sendable () -> Void) {
        self.state = state
        self.timeout = timeout
        self.answered = answered
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    /// The whole request must be in before the deadline: a client that trickles its
    /// headers a byte at a time is closed all the same.
    func arm(_ context: ChannelHandlerContext) {
        deadline?.cancel()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            bodyBytes = 0
        case .body(let b):
            bodyBytes += b.readableBytes
            if bodyBytes > Self.maxBody, let h = head {
                head = nil
                respond(context, h, .payloadTooLarge, "text/plain; charset=utf-8", "request body too large\n", close: true)
            }
        case .end:
            deadline?.cancel()
            deadline = nil
            guard let h = head else { return }
            head = nil
            route(context, h)
        }
    }

    func route(_ context: ChannelHandlerContext, _ h: HTTPRequestHead) {
        let path = h.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? h.uri
        guard h.method == .GET || h.method == .HEAD else {
            var extra = HTTPHeaders()
            extra.add(name: "Allow", value: "GET, HEAD")
            return respond(context, h, .methodNotAllowed, "text/plain; charset=utf-8", "only GET and HEAD\n", extra: extra)
        }
        switch path {
        case "/metrics":
            let format = ExpositionFormat.negotiate(accept: h.headers["accept"].joined(separator: ","))
            respond(context, h, .ok, format.contentType, state.scrape(format))
        case "/":
            respond(context, h, .ok, "text/html; charset=utf-8", Self.page)
        default:
            respond(context, h, .notFound, "text/plain; charset=utf-8", "not found: try /metrics\n")
        }
    }

    static let page = """
        <!DOCTYPE html>
        <html><head><meta charset="utf-8"><title>ipvstop exporter</title></head>
        <body><h1>ipvstop exporter</h1>
        <p>The IPVS director's services, real servers, connection table and findings, for Prometheus.</p>
        <p><a href="/metrics">Metrics</a> (every metric is described in METRICS.md)</p>
        </body></html>

        """

    func respond(_ context: ChannelHandlerContext, _ h: HTTPRequestHead, _ status: HTTPResponseStatus, _ type: String, _ body: String,
                 extra: HTTPHeaders = HTTPHeaders(), close: Bool = false) {
        if status.code >= 400 { state.countRejected() } else { answered() }
        let keepAlive = h.isKeepAlive && !close
        var headers = extra
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: "\(body.utf8.count)")
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: status, headers: headers))), promise: nil)
        if h.method != .HEAD {
            var buf = context.channel.allocator.buffer(capacity: body.utf8.count)
            buf.writeString(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buf))), promise: nil)
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
        // The next request on this connection has the same time to arrive.
        if keepAlive { arm(context) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A half-closed client has sent all it will: answer what is in, then close.
        if let e = event as? ChannelEvent, e == .inputClosed, head == nil {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Parse errors were answered (400) by NIO's error handler before us; anything else
        // ends the connection, never the exporter.
        if error is HTTPParserError { state.countRejected() }
        context.close(promise: nil)
    }
}
