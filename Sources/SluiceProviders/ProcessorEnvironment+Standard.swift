import SluiceEngine
import SluiceModel

extension ProcessorEnvironment {
    /// Every processor Sluice ships, each with its spec (declared in SluiceModel),
    /// in that order: the one place they are put together. `sluice run`, `sluice serve`, the
    /// scheduler, lint and docs all use this environment. A test checks that every spec has a
    /// run type here and every run type a spec there.
    public static let standard = ProcessorEnvironment([
        KMSDecryptProcessor(),
        ValidateOpenAIProcessor(), ValidateAnthropicProcessor(), ValidateGCPProcessor(), ValidateHTTPProcessor(),
        IngestProcessor(transport: ProviderHTTPTransport()), MergeDedupeProcessor(), AggregateProcessor(), SQLProcedureProcessor(),
        ValidateDataProcessor(), NotifyProcessor(),
    ])
}
