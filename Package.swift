// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Sluice",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sluice", targets: ["sluice"]),
        .library(name: "SluiceModel", targets: ["SluiceModel"]),
        .library(name: "SluiceStorage", targets: ["SluiceStorage"]),
        .library(name: "SluiceEngine", targets: ["SluiceEngine"]),
        .library(name: "SluiceSQLite", targets: ["SluiceSQLite"]),
        .library(name: "SluicePostgres", targets: ["SluicePostgres"]),
        .library(name: "SluiceSecrets", targets: ["SluiceSecrets"]),
        .library(name: "SluiceProviders", targets: ["SluiceProviders"]),
        .library(name: "SluiceServer", targets: ["SluiceServer"]),
        .library(name: "SluiceRuntime", targets: ["SluiceRuntime"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.24.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.65.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.20.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.27.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.0.0", traits: ["YAML"]),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.21.0"),
        .package(url: "https://github.com/attaswift/BigInt", from: "6.0.0"),
    ],
    targets: [
        // Pipeline definitions, YAML with positions, expressions, schemas, processor specs,
        // the DAG, lint and the project's settings (sluice.yml and SLUICE_* variables, read
        // with swift-configuration). SQLite (the system library, through GRDB's module) only to prepare
        // procedures against the schemas.
        .target(
            name: "SluiceModel",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "BigInt", package: "BigInt"),
            ]
        ),
        // Envelope encryption of stored credentials: the keyring of key-encryption keys (or a
        // key derived from a passphrase), sealing and opening with AES-GCM, re-wrapping for
        // key rotation, provider format checks. No storage in here: it seals and opens bytes.
        .target(
            name: "SluiceSecrets",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The storage seam: the protocols of the run store, the warehouse and its run
        // workspaces, the credential, API token and webhook audit stores, and the records they
        // keep. Protocols and values only: each backend implements them, the engine and the
        // server use them.
        .target(
            name: "SluiceStorage",
            dependencies: ["SluiceModel", "SluiceSecrets"]
        ),
        // The system zlib, which inflates gzip-compressed input files as `ingest` reads them.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]
        ),
        // The executor, run context, retry and timeout policy and the processors. Talks to
        // storage only through SluiceStorage; no SQLite or PostgreSQL in here.
        .target(
            name: "SluiceEngine",
            dependencies: [
                "SluiceModel",
                "SluiceStorage",
                "SluiceSecrets",
                "CZlib",
                .product(name: "Logging", package: "swift-log"),
                // SHA-256 of the files a run's pipeline is made from (its version).
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The storage protocols on SQLite through GRDB: run store, credential, token and audit
        // stores, each org's warehouse with per-run staging. The embedded default.
        .target(
            name: "SluiceSQLite",
            dependencies: [
                "SluiceModel", "SluiceStorage", "SluiceSecrets",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ]
        ),
        // The storage protocols on PostgreSQL through postgres-nio: the run store, credential,
        // token and webhook audit stores in the `sluice` schema with versioned migrations, one
        // bounded connection pool per process. The team backend (DESIGN.md section 9).
        .target(
            name: "SluicePostgres",
            dependencies: [
                "SluiceModel", "SluiceStorage", "SluiceSecrets",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Processors that call providers over HTTP: the credential validators. The only module
        // with an HTTP client, so lint and the engine build without one.
        .target(
            name: "SluiceProviders",
            dependencies: [
                "SluiceModel",
                "SluiceEngine", "SluiceStorage",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The HTTP API (`sluice serve`): runs triggered by API calls and signed webhooks, per-org
        // tokens, request ids, JSON errors, /metrics, /openapi.json. Hummingbird stays in here.
        .target(
            name: "SluiceServer",
            dependencies: [
                "SluiceModel",
                "SluiceEngine", "SluiceStorage",
                "SluiceSecrets",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.embedInCode("Resources/openapi.json")]
        ),
        // The composition root: picks the backend, opens its stores and puts the processors
        // together (ProjectServices). The only module besides the SQLite one's tests that names
        // a backend.
        .target(
            name: "SluiceRuntime",
            dependencies: [
                "SluiceModel",
                "SluiceStorage",
                "SluiceEngine",
                "SluiceSQLite",
                "SluicePostgres",
                "SluiceProviders",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The command-line tool: flags in, calls into the modules out.
        .executableTarget(
            name: "sluice",
            dependencies: [
                "SluiceModel",
                "SluiceEngine", "SluiceStorage",
                "SluiceRuntime",
                "SluiceSecrets",
                "SluiceProviders",
                "SluiceServer",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "LintBenchmark",
            dependencies: ["SluiceModel", "SluiceEngine", "SluiceProviders"],
            path: "Benchmarks/LintBenchmark"
        ),
        .executableTarget(
            name: "RunBenchmark",
            path: "Benchmarks/RunBenchmark"
        ),
        .executableTarget(
            name: "DAGBenchmark",
            dependencies: ["SluiceEngine", "SluiceStorage", "SluiceSQLite", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/DAGBenchmark"
        ),
        // Drives the release `sluice` binary on PostgreSQL: 200 short runs by 1, 2 and 4 workers.
        .executableTarget(
            name: "WorkerBenchmark",
            path: "Benchmarks/WorkerBenchmark"
        ),
        // Drives the release `sluice` binary: `scheduler --once` catching up against a loop of `sluice run`.
        .executableTarget(
            name: "ScheduleBenchmark",
            path: "Benchmarks/ScheduleBenchmark"
        ),
        // What several test targets share: a logger that keeps its lines.
        .target(
            name: "SluiceTestSupport",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            path: "Tests/SluiceTestSupport"
        ),
        .testTarget(
            name: "SluiceModelTests",
            dependencies: [
                "SluiceTestSupport", "SluiceModel", "SluiceProviders", "SluiceEngine", .product(name: "BigInt", package: "BigInt"),
            ],
            resources: [.copy("Fixtures")]
        ),
        // The engine's behaviour, the invariants users rely on among it, run on SQLite and on
        // PostgreSQL (the server SLUICE_TEST_POSTGRES_URL names) by one parameterised suite.
        .testTarget(
            name: "SluiceEngineTests",
            dependencies: [
                "SluiceTestSupport", "SluiceEngine", "SluiceStorage", "SluiceSQLite", "SluicePostgres", "SluiceSecrets", "SluiceProviders",
                "SluiceRuntime",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // One behaviour suite for the storage protocols, run against every backend: SQLite in
        // a temp folder and PostgreSQL on the server SLUICE_TEST_POSTGRES_URL names.
        .testTarget(
            name: "SluiceStorageTests",
            dependencies: [
                "SluiceTestSupport", "SluiceStorage", "SluiceSQLite", "SluicePostgres", "SluiceModel", "SluiceSecrets",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                // A run store as an older sluice left it, to open with this one's migrations.
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "SluiceSecretsTests",
            dependencies: [
                "SluiceTestSupport", "SluiceSecrets", "SluiceEngine", "SluiceStorage", "SluiceSQLite",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "SluiceProvidersTests",
            dependencies: [
                "SluiceTestSupport",
                "SluiceProviders",
                "SluiceEngine", "SluiceStorage",
                "SluiceModel",
                "SluiceSQLite",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "SluiceServerTests",
            dependencies: [
                "SluiceTestSupport", "SluiceServer", "SluiceEngine", "SluiceStorage", "SluiceSQLite", "SluiceModel", "SluiceSecrets",
                "SluiceRuntime", "SluiceProviders",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "SluiceCLITests",
            dependencies: ["SluiceTestSupport", "SluiceModel"],
            exclude: ["Support/validate_pipelines.py", "Support/fake_openai.py", "Support/echo_provider.py", "Support/slow_events.py"]
        ),
    ]
)
