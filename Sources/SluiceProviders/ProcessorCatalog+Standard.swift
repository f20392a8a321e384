import SluiceEngine
import SluiceStorage

extension ProcessorCatalog {
    /// The credential validators, which call providers over HTTP.
    public static let validators: [any Processor] = [
        ValidateOpenAIProcessor(), ValidateAnthropicProcessor(), ValidateGCPProcessor(), ValidateHTTPProcessor(),
    ]

    /// What `sluice run` executes: the built-in processors, with `ingest` able to fetch HTTP
    /// sources, the validators and `notify`.
    public static let standard = ProcessorCatalog.builtIn.adding(
        validators + [IngestProcessor(transport: ProviderHTTPTransport()), NotifyProcessor()])
}
