import BigInt
import Foundation
import GRDBSQLite
import SluiceModel
import Testing

@Suite struct ExactDecimalTests {
    @Test(arguments: [
        ("1.50", "1.5"), ("-0.000", "0"), ("+12", "12"), ("15e-1", "1.5"), ("1E3", "1000"), (".5", "0.5"), ("5.", "5"),
        ("-0.00012500", "-0.000125"), ("12345678901234567890123456789.123456789", "12345678901234567890123456789.123456789"),
    ])
    func spellingsOfOneNumberHaveOneCanonicalText(_ text: String, _ canonical: String) throws {
        #expect(try #require(ExactDecimal(text)).description == canonical)
    }

    @Test(arguments: ["", "-", ".", "1.2.3", "$10,100.00 ", "10,100.00", " 1", "1 ", "NaN", "Infinity", "1e", "0x10", "1e99999"])
    func textThatIsNotADecimalNumberIsRefused(_ text: String) {
        #expect(ExactDecimal(text) == nil)
    }

    @Test func arithmeticIsExactWhereADoubleIsNot() throws {
        let tenth = try #require(ExactDecimal("0.1"))
        var sum = ExactDecimal(0)
        for _ in 0..<10 { sum = sum + tenth }
        #expect(sum.description == "1")
        #expect((0..<10).reduce(0.0) { total, _ in total + 0.1 } != 1.0, "the case a double gets wrong")
        #expect((try #require(ExactDecimal("19.99")) * ExactDecimal(3)).description == "59.97")
        #expect((try #require(ExactDecimal("0.3")) - tenth - tenth - tenth).description == "0")
        #expect(try #require(ExactDecimal("-2")) < tenth)
    }

    @Test func divisionIsExactWhenItEndsAndRoundsHalfAwayFromZeroWhenNot() throws {
        let million = ExactDecimal(1_000_000)
        #expect(try #require(ExactDecimal(16209).divided(by: million)).description == "0.016209")
        #expect(try #require(ExactDecimal(2).divided(by: ExactDecimal(3), scale: 4)).description == "0.6667")
        #expect(try #require(ExactDecimal(-2).divided(by: ExactDecimal(3), scale: 4)).description == "-0.6667")
        #expect(try #require(ExactDecimal(1).divided(by: ExactDecimal(8), scale: 2)).description == "0.13")
        #expect(ExactDecimal(1).divided(by: ExactDecimal(0)) == nil)
        // To BIGNUMERIC's 38 digits by default; past 64-bit significands the general way.
        #expect(try #require(ExactDecimal(-1).divided(by: ExactDecimal(3))).description == "-0." + String(repeating: "3", count: 38))
        #expect(try #require(ExactDecimal("0.000000001")?.divided(by: million)).description == "0.000000000000001")
        #expect(
            try #require(ExactDecimal("123456789012345678901234567890.5")?.divided(by: ExactDecimal(7), scale: 5)).description
                == "17636684144620811271604938270.07143")
        #expect(try #require(ExactDecimal("2.0000000005")).rounded(scale: 9).description == "2.000000001")
        #expect(try #require(ExactDecimal("-2.0000000005")).rounded(scale: 9).description == "-2.000000001")
    }

    /// Values that fit 128 bits take fast paths; the same values times 10^40 don't. Both ways
    /// must agree, on sums, products, order and rounded quotients.
    @Test func the128BitPathsAgreeWithTheGeneralOnes() throws {
        let huge = try #require(ExactDecimal("1e40"))
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let x = ExactDecimal(
                significand: BigInt(Int64.random(in: -1_000_000_000_000...1_000_000_000_000, using: &generator)), scale: Int.random(in: 0...12))
            let y = ExactDecimal(
                significand: BigInt(Int64.random(in: -1_000_000_000...1_000_000_000, using: &generator)), scale: Int.random(in: 0...12))
            #expect((x + y) * huge == x * huge + y * huge, "\(x) + \(y)")
            #expect((x - y) * huge == x * huge - y * huge, "\(x) - \(y)")
            #expect((x * y) * huge == (x * huge) * y, "\(x) * \(y)")
            #expect((x < y) == (x * huge < y * huge), "\(x) < \(y)")
            #expect(ExactDecimal(x.description) == x)
            #expect(x.withCanonicalText { String(decoding: $0, as: UTF8.self) } == x.description)
            if !y.isZero {
                #expect(x.divided(by: y, scale: 20) == (x * huge).divided(by: y * huge, scale: 20), "\(x) / \(y)")
                let tens = ExactDecimal(
                    significand: BigInt(Int.random(in: 0...1) == 0 ? 1 : -1) * BigInt(10).power(Int.random(in: 0...9)), scale: Int.random(in: 0...6))
                #expect(x.divided(by: tens, scale: 20) == (x * huge).divided(by: tens * huge, scale: 20), "\(x) / \(tens)")
            }
            #expect(x.rounded(scale: 3) == (x * huge).rounded(scale: 3).divided(by: huge, scale: 3), "\(x) rounded")
        }
    }

    @Test func numericAndBigNumericHoldWhatBigQueryHolds() throws {
        let forty = try #require(ExactDecimal("1234567890.123456789012345678901234567890"))
        #expect(DecimalLimits.numeric.check(forty) == .tooManyFractionDigits)
        #expect(DecimalLimits.bigNumeric.check(forty) == .fits(forty))
        #expect(forty.description == "1234567890.12345678901234567890123456789", "the trailing zero is not a digit of the value")
        let wide = try #require(ExactDecimal(String(repeating: "9", count: 30)))
        #expect(DecimalLimits.numeric.check(wide) == .outOfRange)
        #expect(DecimalLimits.numeric.check(try #require(ExactDecimal(String(repeating: "9", count: 29) + ".999999999"))) != .outOfRange)
        #expect(DecimalLimits.numeric.store(try #require(ExactDecimal("0.0000000004"))) == ExactDecimal(0))
    }

    /// The functions registered with SQLite: exact where SQLite's own arithmetic is not, and a
    /// `decimal` collation that compares decimal text as numbers.
    @Test func sqliteComputesOnDecimalTextExactly() throws {
        var connection: OpaquePointer?
        #expect(sqlite3_open_v2(":memory:", &connection, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil) == SQLITE_OK)
        defer { sqlite3_close_v2(connection) }
        SQLiteDecimalFunctions.register(on: connection)
        func values(_ sql: String) throws -> [String?] {
            var statement: OpaquePointer?
            guard sqlite3_prepare_v2(connection, sql, -1, &statement, nil) == SQLITE_OK else {
                throw DecimalSQLError(message: String(cString: sqlite3_errmsg(connection)))
            }
            defer { sqlite3_finalize(statement) }
            var found: [String?] = []
            while true {
                let step = sqlite3_step(statement)
                if step == SQLITE_DONE { return found }
                guard step == SQLITE_ROW else { throw DecimalSQLError(message: String(cString: sqlite3_errmsg(connection))) }
                found.append(sqlite3_column_text(statement, 0).map { String(cString: $0) })
            }
        }
        try _ = values("CREATE TABLE t (v DECIMAL_TEXT(38,9) COLLATE decimal)")
        try _ = values(
            "INSERT INTO t SELECT '0.1' FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) SELECT i FROM n)")
        try _ = values("INSERT INTO t VALUES ('9.5'), ('10'), ('100'), (NULL)")
        #expect(try values("SELECT decimal_sum(v) FROM t WHERE v = '0.1'") == ["1"])
        #expect(try values("SELECT sum(v) FROM t WHERE v = '0.1'") != ["1"], "SQLite's own sum goes through doubles")
        #expect(try values("SELECT v FROM t WHERE v > 9.6 ORDER BY v") == ["10", "100"])
        #expect(try values("SELECT decimal_max(v) FROM t") == ["100"])
        #expect(try values("SELECT decimal_add('0.1', '0.2')") == ["0.3"])
        #expect(try values("SELECT decimal_mul(3, '19.99')") == ["59.97"])
        #expect(try values("SELECT decimal_div(16209, 1e6)") == ["0.016209"])
        #expect(try values("SELECT decimal_cmp('10', '9.5')") == ["1"])
        #expect(try values("SELECT decimal_sum(v) FROM t WHERE v IS NULL") == [nil])
        #expect(try values("SELECT decimal_store(0.1 + 0.2, 38, 9)") == ["0.3"])
        #expect(throws: DecimalSQLError.self) { try values("SELECT decimal_store('1e40', 38, 9)") }
        #expect(throws: DecimalSQLError.self, "bounds past BIGNUMERIC's are refused, not computed") {
            try values("SELECT decimal_store('1.5', 38, -1000000000)")
        }
        // The collation orders canonical text without parsing it, and anything else by its value.
        let mixed = [
            "100", "-0.5", "0.05", "1e3", "-12.5", "9.99", "0", "1.25", "007.5", "-1", "10.5", "0.001", "2.50", "1", "-0.25", "0.5", "10",
            "1.5", "-100.01",
        ]
        try _ = values("CREATE TABLE o (v DECIMAL_TEXT(38,9) COLLATE decimal)")
        for value in mixed { try _ = values("INSERT INTO o VALUES ('\(value)')") }
        let byValue = try mixed.sorted { try #require(ExactDecimal($0)) < (try #require(ExactDecimal($1))) }
        #expect(try values("SELECT v FROM o ORDER BY v") == byValue)
        #expect(try values("SELECT v FROM o ORDER BY v DESC") == byValue.reversed())
        do {
            _ = try values("SELECT decimal_add('$10,100.00 ', 1)")
            Issue.record("text that is no number was added")
        } catch let error as DecimalSQLError {
            #expect(error.message == "decimal_add: '$10,100.00 ' is not a decimal number")
        }
    }
}

private struct DecimalSQLError: Error {
    var message: String
}
