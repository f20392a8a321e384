/// The version of Sluice, as `sluice --version` and the `User-Agent` of its HTTP requests say it.
public enum SluiceVersion {
    public static let current = "0.1.0"
}
