import Foundation
import PostgresNIO
import SluiceModel
import SluiceStorage

extension PostgresWorkspace {
    /// Holds the run's targets (and any staged table the plan did not name), then applies
    /// every staged change, the cursors and the published marker in one transaction that also
    /// drops the staging: after a crash or a server restart, either all of it committed
    /// (`wasPublished` is true) or none of it did.
    func publish() async throws -> [TablePublication] {
        try await hold.hold()
        let staged = try await pool.withConnection { connection in try await self.stagedTables(connection) }
        let planned = hold.tables
        let extra = PostgresTargetHold(
            session: session, prefix: warehouse.schemaPrefix, org: org,
            tables: staged.filter { !planned.contains($0.table.lowercased()) && $0.change != .scratch }.map(\.table))
        try await extra.hold()
        let keys = hold.keys + extra.keys
        let publications: [TablePublication]
        do {
            publications = try await gate.run { try await self.publishStaged(holding: keys) }
        } catch {
            await extra.release()
            throw error
        }
        await extra.release()
        await finish()
        return publications
    }

    /// The publish transaction itself.
    private func publishStaged(holding keys: [Int64]) async throws -> [TablePublication] {
        let pid = session.backendPID
        let dropStaging = warehouse.dropStagingStatements(runID: runID)
        return try await pool.transaction { connection in
            // The holds live on the session's connection: if it broke (a server restart, a
            // lost network), another run may have published these tables since this one read
            // them, so this run must not publish what it computed.
            let distinctKeys = Array(Set(keys))
            if !distinctKeys.isEmpty {
                let held = try await connection.rows(
                    """
                    SELECT count(DISTINCT (classid::bigint << 32) | objid::bigint) FROM pg_locks
                    WHERE locktype = 'advisory' AND objsubid = 1 AND granted AND pid = \(pid)
                      AND ((classid::bigint << 32) | objid::bigint) = ANY(\(distinctKeys))
                    """, logger: self.logger)[0].decode(Int.self)
                guard held == distinctKeys.count else {
                    throw StepFailure(
                        .publishFailed,
                        """
                        run \(self.runID) lost its hold on its target tables (its connection to PostgreSQL at \
                        \(self.pool.settings.server) ended); nothing was published, run it again
                        """, transient: true)
                }
            }
            // A run publishes once: not after another opening took its staging over, nor
            // when its marker is in already.
            let owner = try await connection.fetch("SELECT token FROM \(self.staging)._sluice_owner FOR UPDATE", [], logger: self.logger)
            if let token = owner.rows.first?.first, token != .text(self.ownerToken) {
                throw StepFailure(
                    .stagingSuperseded,
                    "run \(self.runID)'s staging was opened by another process since this one opened it (a worker took the run over); this one publishes nothing"
                )
            }
            let marker = try await connection.fetch(
                "SELECT 1 FROM \(self.published)._sluice_published WHERE run_id = $1", [.text(self.runID)], logger: self.logger)
            guard marker.rows.isEmpty else {
                throw StepFailure(.stagingSuperseded, "run \(self.runID) has published already; it publishes once")
            }
            var publications: [TablePublication] = []
            for staged in try await self.stagedTables(connection) {
                if let publication = try await self.apply(connection, table: staged.table, change: staged.change, step: staged.step) {
                    publications.append(publication)
                }
            }
            let now = WarehouseValue.real(Date().timeIntervalSince1970)
            // Incremental cursors commit with the data they describe.
            try await connection.run(
                """
                INSERT INTO \(self.published)._sluice_cursors (key, value, run_id, at)
                SELECT key, value, $1, $2 FROM \(self.staging)._sluice_cursors
                ON CONFLICT (key) DO UPDATE SET value = excluded.value, run_id = excluded.run_id, at = excluded.at
                """, [.text(self.runID), now], logger: self.logger)
            // The marker commits with the data: after a crash, it tells whether this run's
            // changes are in.
            try await connection.run(
                """
                INSERT INTO \(self.published)._sluice_published (run_id, at) VALUES ($1, $2)
                """, [.text(self.runID), now], logger: self.logger)
            for statement in dropStaging { try await connection.run(statement.sql, statement.arguments, logger: self.logger) }
            return publications
        }
    }

    /// Applies one staged table to the published one (inside the publish transaction) and
    /// says what it did; nil for a table that never publishes. The same statements as
    /// `SQLiteWorkspace.apply`, in PostgreSQL's words.
    private func apply(_ connection: PostgresConnection, table: String, change: StagedChange, step: String?) async throws -> TablePublication? {
        if case .scratch = change { return nil }
        let quoted = quote(table)
        let target = "\(published).\(quoted)"
        let source = "\(staging).\(quoted)"
        let stagedColumns = try await columnTypes(connection, schema: warehouse.stagingSchema(runID), table: table)
        let list = dialect.quotedList(stagedColumns.map(\.name))
        let stagedCount = try await count(connection, "SELECT count(*) FROM \(source)")
        var publication = TablePublication(table: table, step: step, inserted: 0, updated: 0, unchanged: 0, deleted: 0)
        var key: [String] = []
        if case .upsert(let upsertKey, _) = change { key = upsertKey }
        let keyIndex = quote(PostgresWarehouse.name([table, "_key"]))
        let nulls = warehouse.nullsNotDistinct ? " NULLS NOT DISTINCT" : ""
        let created = try await !exists(connection, schema: warehouse.orgSchema(org), table: table)
        if created {
            if try await adopt(connection, table: table, key: key, keyIndex: keyIndex) {
                publication.inserted = stagedCount
                return publication
            }
            let definitions = stagedColumns.map { "\(quote($0.name)) \($0.type)" }.joined(separator: ", ")
            try await connection.run("CREATE TABLE \(target) (\(definitions))", logger: logger)
            if !key.isEmpty {
                // A unique key, a null being one value: the upsert's key match is null-safe.
                try await connection.run("CREATE UNIQUE INDEX \(keyIndex) ON \(target) (\(dialect.quotedList(key)))\(nulls)", logger: logger)
            }
            let order = key.isEmpty ? "" : " ORDER BY \(dialect.quotedList(key))"
            try await connection.run("INSERT INTO \(target) (\(list)) SELECT \(list) FROM \(source)\(order)", logger: logger)
            publication.inserted = stagedCount
            return publication
        }
        // Schema evolution: columns the run adds are added to the published table.
        let existing = Set(try await columnTypes(connection, schema: warehouse.orgSchema(org), table: table).map(\.name))
        for column in stagedColumns where !existing.contains(column.name) {
            try await connection.run("ALTER TABLE \(target) ADD COLUMN \(quote(column.name)) \(column.type)", logger: logger)
        }
        switch change {
        case .scratch:
            return nil
        case .replace:
            // DELETE, not TRUNCATE: readers with an older snapshot keep seeing the old rows.
            publication.deleted = try await connection.run("DELETE FROM \(target)", logger: logger)
            try await connection.run("INSERT INTO \(target) (\(list)) SELECT \(list) FROM \(source)", logger: logger)
            publication.inserted = stagedCount
        case .upsert(let key, let conflict):
            let order = "ORDER BY \(dialect.quotedList(key))"
            switch conflict {
            case .replace:
                // Keys match null-safely (a null group is one group): the published rows with a
                // staged key go, then the staged rows come in.
                let match = key.map { dialect.nullSafeEquals("s.\(quote($0))", "p.\(quote($0))") }.joined(separator: " AND ")
                let replaced = try await connection.run(
                    "DELETE FROM \(target) AS p WHERE EXISTS (SELECT 1 FROM \(source) AS s WHERE \(match))", logger: logger)
                try await connection.run("INSERT INTO \(target) (\(list)) SELECT \(list) FROM \(source) \(order)", logger: logger)
                publication.inserted = stagedCount - replaced
                publication.updated = replaced
            case .keepPublished, .latest:
                // A table published before may lack a unique key; the upsert needs one.
                try await connection.run(
                    "CREATE UNIQUE INDEX IF NOT EXISTS \(keyIndex) ON \(target) (\(dialect.quotedList(key)))\(nulls)", logger: logger)
                let updates = stagedColumns.map(\.name).filter { !key.contains($0) }.map { "\(quote($0)) = excluded.\(quote($0))" }
                let action: String
                if case .latest = conflict, !updates.isEmpty {
                    // Applied again against the table as it is now: another run may have
                    // published a newer version of a key since this run staged its own.
                    action = "DO UPDATE SET \(updates.joined(separator: ", ")) WHERE \(Self.stagedWins(conflict, staged: "excluded", published: "p"))"
                } else {
                    action = "DO NOTHING"
                }
                // A row the statement inserted has no deleting transaction yet (xmax 0); one it
                // updated has this one's.
                let counts = try await connection.fetch(
                    """
                    WITH written AS (
                        INSERT INTO \(target) AS p (\(list)) SELECT \(list) FROM \(source) \(order)
                        ON CONFLICT (\(dialect.quotedList(key))) \(action)
                        RETURNING (p.xmax = 0) AS inserted)
                    SELECT count(*) FILTER (WHERE inserted), count(*) FROM written
                    """, [], logger: logger)
                guard let row = counts.rows.first, case .integer(let inserted) = row[0], case .integer(let changed) = row[1] else {
                    throw StepFailure(.publishFailed, "publishing \(table) returned no counts")
                }
                publication.inserted = Int(inserted)
                publication.updated = Int(changed - inserted)
                publication.unchanged = stagedCount - Int(changed)
            }
        case .replacePartitions(let column):
            let partition = quote(column)
            publication.deleted = try await connection.run(
                "DELETE FROM \(target) WHERE \(partition) IN (SELECT \(partition) FROM \(source) WHERE \(partition) IS NOT NULL)",
                logger: logger)
            try await connection.run("INSERT INTO \(target) (\(list)) SELECT \(list) FROM \(source)", logger: logger)
            publication.inserted = stagedCount
        }
        return publication
    }

    /// Publishes a target that does not exist yet by moving the staged table into the org's
    /// schema instead of copying its rows: a whole pass over the data saved. The table leaves
    /// as a published one would be made: without the arrival column, with the key's unique
    /// index under its published name and no other, readable (only) by the org's sandbox role.
    /// In a savepoint: when the table can't be moved (something else made it, a view of a
    /// procedure's holds on to its arrival column), false, and nothing of the attempt stays.
    private func adopt(_ connection: PostgresConnection, table: String, key: [String], keyIndex: String) async throws -> Bool {
        let schema = warehouse.stagingSchema(runID)
        let owned = try await connection.fetch(
            """
            SELECT 1 FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'r' AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
            """, [.text(schema), .text(table)], logger: logger)
        guard !owned.rows.isEmpty else { return false }
        let source = "\(staging).\(quote(table))"
        try await connection.run("SAVEPOINT sluice_adopt", logger: logger)
        do {
            try await connection.run("ALTER TABLE \(source) DROP COLUMN \(quote(PostgresDialect.arrivalColumn))", logger: logger)
            // The unique constraints staging gave it: the one on the key becomes the published
            // key index, any other goes (a published table has no other).
            let constraints = try await connection.fetch(
                """
                SELECT con.conname::text, array_to_string(array(
                    SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(number, position)
                    JOIN pg_attribute AS a ON a.attrelid = con.conrelid AND a.attnum = k.number ORDER BY k.position), ',')
                FROM pg_constraint AS con JOIN pg_class AS c ON c.oid = con.conrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace
                WHERE n.nspname = $1 AND c.relname = $2 AND con.contype IN ('u', 'p')
                """, [.text(schema), .text(table)], logger: logger)
            var keyed = false
            for row in constraints.rows {
                guard case .text(let name) = row[0], case .text(let columns) = row[1] else { continue }
                if !keyed, !key.isEmpty, columns == key.joined(separator: ",") {
                    try await connection.run("ALTER TABLE \(source) RENAME CONSTRAINT \(quote(name)) TO \(keyIndex)", logger: logger)
                    keyed = true
                } else {
                    try await connection.run("ALTER TABLE \(source) DROP CONSTRAINT \(quote(name))", logger: logger)
                }
            }
            try await connection.run("ALTER TABLE \(source) SET SCHEMA \(published)", logger: logger)
            let target = "\(published).\(quote(table))"
            if !key.isEmpty, !keyed {
                let nulls = warehouse.nullsNotDistinct ? " NULLS NOT DISTINCT" : ""
                try await connection.run("CREATE UNIQUE INDEX \(keyIndex) ON \(target) (\(dialect.quotedList(key)))\(nulls)", logger: logger)
            }
            // What the org schema's default privileges give a table made there, and nothing
            // a procedure was granted on it while staged.
            try await connection.run("REVOKE ALL ON TABLE \(target) FROM PUBLIC, \(role)", logger: logger)
            try await connection.run("GRANT SELECT ON TABLE \(target) TO \(role)", logger: logger)
            try await connection.run("RELEASE SAVEPOINT sluice_adopt", logger: logger)
            return true
        } catch let error as PSQLError where error.serverInfo != nil {
            try await connection.run("ROLLBACK TO SAVEPOINT sluice_adopt", logger: logger)
            try await connection.run("RELEASE SAVEPOINT sluice_adopt", logger: logger)
            logger.debug("publishing \(table) by copy: the staged table could not be moved (\(String(reflecting: error)))")
            return false
        }
    }

    func count(_ connection: PostgresConnection, _ sql: String) async throws -> Int {
        guard case .integer(let value) = try await connection.fetch(sql, [], logger: logger).rows.first?.first else { return 0 }
        return Int(value)
    }
}
