/// The id a run's outbound requests carry as `X-Request-Id` (ingest pages, validators,
/// notifications), so a provider's logs can be matched to the run: the request id of the API
/// call or webhook that started it, else the run's id. The executor sets it for the whole run,
/// its steps and failure handlers included; the HTTP client reads it.
public enum RunRequestID {
    @TaskLocal public static var current: String?

    /// The header that carries it.
    public static let header = "X-Request-Id"
}
