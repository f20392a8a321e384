import SluiceModel

extension RetryPolicy {
    /// The wait before attempt `failedAttempts + 1`: `initial_delay` doubled per failure
    /// (exponential) or constant (fixed), capped at `max_delay`; with jitter, a random point
    /// in the upper half, so many runs retrying at once spread out.
    public func delay(afterFailedAttempts failedAttempts: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let initial = initialDelay.timeInterval
        let cap = maxDelay.timeInterval
        var seconds = initial
        if backoff == .exponential {
            seconds = initial * pow2(max(0, failedAttempts - 1))
        }
        seconds = min(seconds, cap)
        if jitter {
            seconds = seconds / 2 + Double.random(in: 0...(seconds / 2), using: &generator)
        }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    private func pow2(_ exponent: Int) -> Double {
        exponent >= 60 ? .greatestFiniteMagnitude : Double(UInt64(1) << UInt64(exponent))
    }
}
