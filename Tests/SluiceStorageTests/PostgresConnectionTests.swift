import Foundation
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluicePostgres

/// Reaching a PostgreSQL server: the database URL, where the password comes from, and what a
/// person is told when the server can't be used; never the password.
struct PostgresSettingsTests {
    @Test func aURLGivesTheServerUserDatabaseAndSSLMode() throws {
        let settings = try PostgresSettings(
            url: "postgres://loader@db.example.com:6543/warehouse?sslmode=verify-full",
            environment: ["SLUICE_DATABASE_PASSWORD": "s3cret-from-env"])
        #expect(settings.host == "db.example.com" && settings.port == 6543)
        #expect(settings.user == "loader" && settings.database == "warehouse")
        #expect(settings.sslMode == .verifyFull)
        #expect(settings.password?.text == "s3cret-from-env")
        #expect(settings.description == "loader@db.example.com:6543/warehouse")
        #expect(!String(reflecting: settings).contains("s3cret-from-env"))
        #expect(!"\(settings)".contains("s3cret-from-env"))

        let plain = try PostgresSettings(url: "postgresql://u@localhost/db", environment: [:])
        #expect(plain.port == 5432 && plain.sslMode == .prefer && plain.password == nil)
    }

    @Test func aURLThatCarriesAPasswordIsRefusedWithoutRepeatingIt() throws {
        let error = try #require(throws: PostgresError.self) {
            try PostgresSettings(url: "postgres://loader:hunter2-in-yaml@db.example.com:5432/warehouse", environment: [:])
        }
        #expect(error.description.contains("db.example.com:5432"))
        #expect(error.description.contains("SLUICE_DATABASE_PASSWORD"))
        #expect(!error.description.contains("hunter2-in-yaml"))
        #expect(!String(reflecting: error).contains("hunter2-in-yaml"))
        let unreadable = try #require(throws: PostgresError.self) {
            try PostgresSettings(url: "postgres://loader:hunter2-in-yaml@db.example.com:port/warehouse", environment: [:])
        }
        #expect(!unreadable.description.contains("hunter2-in-yaml"))
    }

    @Test func badURLsSayWhatIsWrong() throws {
        for (url, words) in [
            ("mysql://u@h/db", "postgres://user@host:port/dbname"),
            ("postgres://h:5432/db", "names no user"),
            ("postgres://u@h:5432", "names no database"),
            ("postgres://u@h/db?sslmode=allow", "sslmode allow is not one of disable, prefer, require, verify-full"),
            ("postgres://u@h/db?pool=3", "pool is not known"),
        ] {
            let error = try #require(throws: PostgresError.self) { try PostgresSettings(url: url, environment: [:]) }
            #expect(error.description.contains(words), "\(url): \(error)")
        }
    }

    @Test func thePasswordComesFromAFileOrTheEnvironment() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-pw-\(UUID().uuidString)")
        try Data("from-a-file\n".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let fromFile = try PostgresSettings(url: "postgres://u@h/db", environment: ["SLUICE_DATABASE_PASSWORD_FILE": file.path])
        #expect(fromFile.password?.text == "from-a-file")
        let fromPG = try PostgresSettings(url: "postgres://u@h/db", environment: ["PGPASSWORD": "pg"])
        #expect(fromPG.password?.text == "pg")
        let preferred = try PostgresSettings(
            url: "postgres://u@h/db", environment: ["PGPASSWORD": "pg", "SLUICE_DATABASE_PASSWORD": "sluice"])
        #expect(preferred.password?.text == "sluice")
        let both = try #require(throws: PostgresError.self) {
            try PostgresSettings(
                url: "postgres://u@h/db", environment: ["SLUICE_DATABASE_PASSWORD_FILE": file.path, "SLUICE_DATABASE_PASSWORD": "x-secret"])
        }
        #expect(both.description.contains("set one of them") && !both.description.contains("x-secret"))
        let missing = try #require(throws: PostgresError.self) {
            try PostgresSettings(url: "postgres://u@h/db", environment: ["SLUICE_DATABASE_PASSWORD_FILE": file.path + "-none"])
        }
        #expect(missing.description.contains("can't be read"))
    }
}

/// Failures against the real test server: each names host:port and the problem, and never the
/// password.
struct PostgresConnectionTests {
    @Test func aWrongPasswordIsReportedWithoutIt() async throws {
        guard let admin = try Backend.Postgres.settings() else { return }
        let role = "sluice_pw_" + UUID().uuidString.prefix(8).lowercased()
        let pool = try await PostgresPool.open(admin)
        try await pool.execute("CREATE ROLE \(role) LOGIN PASSWORD 'right-horse-battery'")
        do {
            var url = "postgres://\(role)@\(admin.server)/\(admin.database)"
            let wrong = try PostgresSettings(url: url + "?sslmode=disable", environment: ["SLUICE_DATABASE_PASSWORD": "wrong-staple-9"])
            let error = try await #require(throws: PostgresError.self) { try await PostgresPool.open(wrong) }
            #expect(error.problem == .authenticationFailed(user: role))
            #expect(error.description.contains(admin.server))
            #expect(!error.description.contains("wrong-staple-9") && !String(reflecting: error).contains("wrong-staple-9"))

            let none = try PostgresSettings(url: url, environment: [:])
            let noPassword = try await #require(throws: PostgresError.self) { try await PostgresPool.open(none) }
            #expect(noPassword.problem == .authenticationFailed(user: role))

            // The right one gets in; the role may not create the store's schema.
            url += "?sslmode=prefer"
            let right = try PostgresSettings(url: url, environment: ["PGPASSWORD": "right-horse-battery"])
            let rolePool = try await PostgresPool.open(right)
            let denied = await #expect(throws: PostgresError.self) {
                _ = try await PostgresRunStore(pool: rolePool, schema: "denied_" + role)
            }
            if case .permissionDenied(let message) = denied?.problem {
                #expect(message.contains("permission denied"))
            } else {
                Issue.record("expected a permission error, got \(String(describing: denied))")
            }
            #expect(denied?.description.contains(admin.server) == true)
            await rolePool.close()
        } catch {
            try? await pool.execute("DROP ROLE IF EXISTS \(role)")
            await pool.close()
            throw error
        }
        try await pool.execute("DROP ROLE IF EXISTS \(role)")
        await pool.close()
    }

    /// A worker's role may use a store that its owner migrated, without the right to create
    /// anything: opening it migrates nothing and needs no CREATE.
    @Test func aRoleThatMayOnlyUseTheTablesOpensAMigratedStore() async throws {
        guard let admin = try Backend.Postgres.settings() else { return }
        try await withFreshSchema(admin) { pool, schema in
            _ = try await PostgresRunStore(pool: pool, schema: schema)
            let role = "sluice_user_" + UUID().uuidString.prefix(8).lowercased()
            try await pool.execute("CREATE ROLE \(role) LOGIN PASSWORD 'user-pass-77'")
            try await pool.execute("GRANT USAGE ON SCHEMA \(schema) TO \(role)")
            try await pool.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA \(schema) TO \(role)")
            do {
                let settings = try PostgresSettings(
                    url: "postgres://\(role)@\(admin.server)/\(admin.database)", environment: ["SLUICE_DATABASE_PASSWORD": "user-pass-77"])
                let rolePool = try await PostgresPool.open(settings)
                do {
                    let store = try await PostgresRunStore(pool: rolePool, schema: schema)
                    #expect(store.migrationsApplied == 0)
                    let run = RunRecord(pipeline: "p", org: "acme", logicalDate: "2026-03-01", trigger: .cli)
                    #expect(try await store.createRun(run, steps: []).created)
                    #expect(try await store.runCounts() == [.pending: 1])
                } catch {
                    await rolePool.close()
                    throw error
                }
                await rolePool.close()
            } catch {
                try? await pool.execute("DROP OWNED BY \(role)")
                try? await pool.execute("DROP ROLE \(role)")
                throw error
            }
            try await pool.execute("DROP OWNED BY \(role)")
            try await pool.execute("DROP ROLE \(role)")
        }
    }

    @Test func aClosedPortIsReportedAsUnreachable() async throws {
        guard try Backend.Postgres.settings() != nil else { return }
        let port = try closedPort()
        let settings = try PostgresSettings(url: "postgres://sluice@127.0.0.1:\(port)/db?sslmode=disable", environment: [:])
        let started = ContinuousClock.now
        let error = try await #require(throws: PostgresError.self) { try await PostgresPool.open(settings) }
        guard case .unreachable(let why) = error.problem else {
            Issue.record("expected unreachable, got \(error)")
            return
        }
        #expect(why.contains("connection refused"))
        #expect(error.description.contains("127.0.0.1:\(port)"))
        #expect(ContinuousClock.now - started < .seconds(30), "refused at once, not after the pool's retries")
    }

    @Test func aMissingDatabaseIsNamed() async throws {
        guard let admin = try Backend.Postgres.settings() else { return }
        let settings = try PostgresSettings(url: "postgres://\(admin.user)@\(admin.server)/no_such_database_here", environment: [:])
        let error = try await #require(throws: PostgresError.self) { try await PostgresPool.open(settings) }
        #expect(error.problem == .missingDatabase("no_such_database_here"))
        #expect(error.description == "PostgreSQL at \(admin.server) has no database no_such_database_here")
    }

    /// Whether a connection of `pool` is encrypted, as the server sees it.
    func encrypted(_ pool: PostgresPool) async throws -> Bool {
        let logger = pool.logger
        return try await pool.withConnection { connection in
            try await connection.rows("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", logger: logger)[0].decode(Bool.self)
        }
    }

    /// The test server (scripts/postgres-test-server.sh) offers TLS with a self-signed
    /// certificate: `disable` stays plain, `prefer` and `require` encrypt, `verify-full`
    /// refuses the certificate. Against a server without TLS, `require` fails.
    @Test(arguments: PostgresSettings.SSLMode.allCases)
    func sslmodeIsHonoured(_ mode: PostgresSettings.SSLMode) async throws {
        guard let admin = try Backend.Postgres.settings() else { return }
        let plain = try await PostgresPool.open(admin)
        let logger = plain.logger
        let offered = try await plain.withConnection { connection in
            try await connection.rows("SHOW ssl", logger: logger)[0].decode(String.self) == "on"
        }
        await plain.close()
        let url = "postgres://\(admin.user)@\(admin.server)/\(admin.database)?sslmode=\(mode.rawValue)"
        let settings = try PostgresSettings(url: url, environment: [:])
        switch (mode, offered) {
        case (.disable, _), (.prefer, false):
            let pool = try await PostgresPool.open(settings)
            #expect(try await encrypted(pool) == false)
            await pool.close()
        case (.prefer, true), (.require, true):
            let pool = try await PostgresPool.open(settings)
            #expect(try await encrypted(pool))
            await pool.close()
        case (.require, false), (.verifyFull, _):
            let error = try await #require(throws: PostgresError.self) { try await PostgresPool.open(settings) }
            guard case .tls = error.problem else {
                Issue.record("expected a TLS error, got \(error)")
                return
            }
            #expect(error.description.contains(admin.server))
            if offered {
                #expect(error.description.contains("certificate could not be verified"), "\(error)")
            }
        }
    }

    @Test func aSchemaNameThatIsNoIdentifierIsRefused() async throws {
        guard let settings = try Backend.Postgres.settings() else { return }
        let pool = try await PostgresPool.open(settings)
        let error = await #expect(throws: PostgresError.self) { _ = try await PostgresRunStore(pool: pool, schema: "runs; DROP") }
        await pool.close()
        #expect(error?.description.contains("is not a valid name") == true, "\(String(describing: error))")
    }

    /// Eight processes opening the store on a fresh database at once: the schema is migrated
    /// exactly once, and none of them fails.
    @Test func eightOpensAtOnceMigrateOnce() async throws {
        guard let settings = try Backend.Postgres.settings() else { return }
        try await withFreshSchema(settings) { _, schema in
            let applied = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        // A pool each, as separate processes would have.
                        let pool = try await PostgresPool.open(settings)
                        do {
                            let store = try await PostgresRunStore(pool: pool, schema: schema)
                            await pool.close()
                            return store.migrationsApplied
                        } catch {
                            await pool.close()
                            throw error
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(applied.sorted() == [0, 0, 0, 0, 0, 0, 0, PostgresMigrations.all.count])
            let pool = try await PostgresPool.open(settings)
            let store = try await PostgresRunStore(pool: pool, schema: schema)
            #expect(store.migrationsApplied == 0)
            #expect(try await store.runCounts().isEmpty)
            await pool.close()
        }
    }
}

/// A port on 127.0.0.1 that nothing listens on: bound, then closed.
func closedPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}
