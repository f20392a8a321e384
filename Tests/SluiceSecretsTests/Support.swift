import Foundation
import Logging
import SluiceTestSupport
import Synchronization
import Testing

@testable import SluiceSecrets

/// A folder under the system temporary directory, removed by the caller.
func temporaryFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-secrets-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A clock tests move by hand, so grace periods and expiries pass without waiting.
final class TestClock: Sendable {
    private let current: Mutex<Date>

    init(_ start: Date = Date(timeIntervalSince1970: 1_780_000_000)) {
        current = Mutex(start)
    }

    var now: Date { current.withLock { $0 } }

    func advance(by seconds: TimeInterval) {
        current.withLock { $0 = $0.addingTimeInterval(seconds) }
    }

    var function: @Sendable () -> Date { { self.now } }
}

/// Holds every task until `count` have arrived, then lets them all go at once, so a race
/// starts together instead of one task finishing before the next begins.
actor Barrier {
    private let count: Int
    private var arrived = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(count: Int) {
        self.count = count
    }

    func arriveAndWait() async {
        arrived += 1
        if arrived == count {
            for continuation in waiting { continuation.resume() }
            waiting.removeAll()
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }
}

/// The code of what `body` throws (a SecretsError), or nil when it doesn't throw.
func secretsErrorCode(_ body: () throws -> Void) -> SecretsError.Code? {
    do {
        try body()
        return nil
    } catch let error as SecretsError {
        return error.code
    } catch {
        Issue.record("expected a SecretsError, got \(error)")
        return nil
    }
}

let openAIKey = "sk-proj-T3stValue0nlyForTests_abcdefghijklmnop0123"
let anthropicKey = "sk-ant-api03-T3stValue0nlyForTests_abcdefghijklmnop"

/// A service-account file with every required field (the key is a placeholder PEM).
let serviceAccountJSON = """
    {"type": "service_account", "project_id": "sluice-test", "private_key_id": "0123456789abcdef",
     "private_key": "-----BEGIN PRIVATE KEY-----\\nTUlJQ2VnSUJBREFOQmdrcWhraUc5dzBCQVFFRkFBU0NBbUF3Z2dKY0FnRUFBb0dCQUxU\\n-----END PRIVATE KEY-----\\n",
     "client_email": "loader@sluice-test.iam.gserviceaccount.com", "client_id": "100000000000000000001",
     "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": "https://oauth2.googleapis.com/token"}
    """
