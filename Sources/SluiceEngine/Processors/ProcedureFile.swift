import Foundation
import SluiceModel
import SluiceStorage

/// SQL files from `procedures/`: read from inside the project, and their `:name` parameters
/// turned into numbered placeholders with bound values (never spliced into the text).
enum ProcedureFile {
    static func read(_ path: String, step: StepContext) throws(StepFailure) -> String {
        guard let project = step.project else { throw StepFailure.config("no project folder to read \(path) from") }
        let root = project.root.standardizedFileURL.path
        let file = URL(fileURLWithPath: path, relativeTo: project.root).standardizedFileURL
        guard file.path.hasPrefix(root + "/") else {
            throw StepFailure.config("procedure \(shown(path)) is outside the project folder")
        }
        guard let data = try? Data(contentsOf: file), let text = String(data: data, encoding: .utf8) else {
            throw StepFailure(.missingProcedure, "cannot read procedure \(shown(path))")
        }
        var sql = text.trimmingCharacters(in: .whitespacesAndNewlines)
        while sql.hasSuffix(";") { sql = String(sql.dropLast()).trimmingCharacters(in: .whitespacesAndNewlines) }
        return sql
    }

    /// The procedure's text as it is in the file, for running it as a script (so positions in
    /// failures are the file's own).
    static func readScript(_ path: String, step: StepContext) throws(StepFailure) -> String {
        _ = try read(path, step: step)
        guard let project = step.project,
            let data = try? Data(contentsOf: URL(fileURLWithPath: path, relativeTo: project.root).standardizedFileURL),
            let text = String(data: data, encoding: .utf8)
        else {
            throw StepFailure(.missingProcedure, "cannot read procedure \(shown(path))")
        }
        return text
    }

    /// Runs `body`, which runs the procedure at `path`; a failure it throws is said to be the
    /// procedure's: with `exactPositions` (the file's own text ran) at its line and column in
    /// the file, else named in the message (bound parameters moved the text).
    static func located<T>(_ path: String, exactPositions: Bool, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch var failure as StepFailure {
            if exactPositions, var location = failure.location, location.file.isEmpty {
                location.file = path
                failure.location = location
            } else if failure.location?.file.isEmpty == true {
                failure.location = nil
                failure.message = "procedure \(path): \(failure.message)"
            }
            throw failure
        }
    }

    /// Replaces `:name` outside literals, quoted names and comments with placeholders, in order,
    /// returning the values to bind. A parameter the step does not give is an error.
    static func bindNamed(_ sql: String, params: [String: WarehouseValue], dialect: any SQLDialect) throws(StepFailure) -> (String, [WarehouseValue])
    {
        let characters = Array(sql)
        var result = ""
        var arguments: [WarehouseValue] = []
        var index = 0
        func isNameCharacter(_ character: Character) -> Bool { character.isLetter || character.isNumber || character == "_" }
        while index < characters.count {
            let character = characters[index]
            switch character {
            case "'", "\"":
                var end = index + 1
                while end < characters.count {
                    if characters[end] == character {
                        if end + 1 < characters.count, characters[end + 1] == character { end += 2; continue }
                        break
                    }
                    end += 1
                }
                result += String(characters[index...min(end, characters.count - 1)])
                index = end + 1
            case "-" where index + 1 < characters.count && characters[index + 1] == "-":
                while index < characters.count, characters[index] != "\n" { result.append(characters[index]); index += 1 }
            case "/" where index + 1 < characters.count && characters[index + 1] == "*":
                var end = index + 2
                while end + 1 < characters.count, !(characters[end] == "*" && characters[end + 1] == "/") { end += 1 }
                result += String(characters[index..<min(end + 2, characters.count)])
                index = end + 2
            case ":" where index + 1 < characters.count && characters[index + 1] == ":":
                result += "::"
                index += 2
            case ":" where index + 1 < characters.count && (characters[index + 1].isLetter || characters[index + 1] == "_"):
                var end = index + 1
                while end < characters.count, isNameCharacter(characters[end]) { end += 1 }
                let name = String(characters[(index + 1)..<end])
                guard let value = params[name] else {
                    throw StepFailure.config("the procedure uses :\(name), but the step gives no params.\(name)")
                }
                arguments.append(value)
                result += dialect.placeholder(arguments.count)
                index = end
            default:
                result.append(character)
                index += 1
            }
        }
        return (result, arguments)
    }
}
