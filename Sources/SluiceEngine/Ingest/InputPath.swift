import Foundation
import SluiceModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where `ingest` may read an input file from, and the opening of one (invariant 10: a run of
/// an org reads the project's files and the inputs configured for that org, nothing else).
///
/// A run may read files under the project folder, except `.sluice/` (the run store, every
/// org's warehouse, the keyring) and, when `inputs.root` holds `{org}`, the folders of other
/// orgs beside its own; and files under its org's input root, which may lie outside the
/// project. A path is resolved with its symlinks followed before it is checked, and then opened
/// one folder at a time without following any symlink, so what is opened is what was checked.
///
/// A path whose template read a value the run's caller chose (a param given through the API or
/// a webhook) may besides be neither absolute nor hold a `..`. Refusals name the field and
/// the param, never where the path leads, and read the same whether or not a file is there.
struct InputPath {
    /// The step's `with` field the path comes from (`source.path`).
    let field: String
    /// The path as the step's config gives it.
    let given: String
    let location: SourceLocation?
    /// What the run's caller chose of the path; nil when it is the operator's or the author's.
    let untrusted: ConfigResolver.UntrustedField?
    let org: String
    let project: ProjectContext

    init(_ given: String, field: String, at location: SourceLocation?, step: StepContext, project: ProjectContext) {
        self.given = given
        self.field = field
        self.location = location
        untrusted = step.untrustedFields[field]
        org = step.org
        self.project = project
    }

    /// Checks the path and opens the file; `missing_input` when it does not exist (inside
    /// what the run may read), `input_refused` when it is not allowed.
    func openInput() throws(StepFailure) -> InputFile {
        if given.utf8.contains(0) { throw refused("it holds a NUL byte") }
        if let untrusted {
            // Absolute only by the pipeline's own text (`/srv/exports/${{ params.file }}`).
            let absolute = given.hasPrefix("/") && !untrusted.prefix.hasPrefix("/")
            if absolute || given.split(separator: "/", omittingEmptySubsequences: false).contains("..") {
                throw refused("a path the caller of a run chooses must be relative to the project folder and hold no '..'")
            }
        }
        let lexical = given.hasPrefix("/") ? given : project.root.path + "/" + given
        guard let target = Self.resolve(lexical), let roots = allowedRoots(), roots.allows(target.path),
            roots.allowsAsWritten(Self.normalized(lexical))
        else {
            throw refused(outside)
        }
        guard target.exists else {
            throw StepFailure(.missingInput, "input file \(shown(given)) does not exist", at: location)
        }
        return try openWithoutFollowing(target.path)
    }

    /// How messages name the path: the field, the param it came from, and (for the operator's
    /// own paths) the path as given, never where it leads.
    private var name: String {
        guard let untrusted else { return "input file \(shown(given)) ('\(field)')" }
        return "'\(field)' (from \(untrusted.references.joined(separator: ", ")), given by the caller of the run)"
    }

    private var outside: String {
        let root = project.settings.inputRoot(for: org).map { " and org \(shown(org))'s input root \(shown($0))" } ?? ""
        return "it is not within the files this run may read: the project folder (not .sluice/)\(root)"
    }

    private func refused(_ reason: String) -> StepFailure {
        StepFailure(.inputRefused, "\(name) can't be read: \(reason)", at: location)
    }

    // MARK: Where the path leads

    struct Target {
        /// Absolute, without symlinks, `.` or `..`.
        var path: String
        var exists: Bool
    }

    /// The real path of `path`, with its symlinks followed. For a path that does not exist, the
    /// real path of its longest existing folder followed by the rest as written (which holds no
    /// symlink, since none of it exists). Nil when it can't be told: a symlink that leads
    /// nowhere or in a loop, so that such a link reads the same as one that leads outside.
    static func resolve(_ path: String) -> Target? {
        if let real = realPath(path) { return Target(path: real, exists: true) }
        var components = path.split(separator: "/").map(String.init)
        var missing: [String] = []
        while let last = components.popLast() {
            missing.insert(last, at: 0)
            guard let real = realPath("/" + components.joined(separator: "/")) else { continue }
            var resolved = real.split(separator: "/").map(String.init)
            for component in missing {
                switch component {
                case ".": continue
                case "..": _ = resolved.popLast()
                default:
                    // Something there that can't be resolved: a link that leads nowhere.
                    var status = stat()
                    if lstat("/" + (resolved + [component]).joined(separator: "/"), &status) == 0 { return nil }
                    resolved.append(component)
                }
            }
            return Target(path: "/" + resolved.joined(separator: "/"), exists: false)
        }
        return nil
    }

    /// `path` with `.` and `..` applied to the text, symlinks left as they are.
    static func normalized(_ path: String) -> String {
        var result: [Substring] = []
        for component in path.split(separator: "/") {
            if component == "." { continue }
            if component == ".." { _ = result.popLast() } else { result.append(component) }
        }
        return "/" + result.joined(separator: "/")
    }

    static func realPath(_ path: String) -> String? {
        guard let pointer = realpath(path, nil) else { return nil }
        defer { free(pointer) }
        return String(cString: pointer)
    }

    // MARK: What the run may read

    struct Roots {
        var project: String
        var state: String
        /// The org's input root, when it exists.
        var org: String?
        /// The folder that holds every org's input root (`data` for `data/{org}`), real and as
        /// written, and the run's own folder name in it.
        var orgsParent: (real: String, written: String, own: String)?

        /// Whether the real path `path` is one the run may read.
        func allows(_ path: String) -> Bool {
            if Self.isWithin(path, state) { return false }
            if let org, Self.isWithin(path, org) { return true }
            return Self.isWithin(path, project) && !isOtherOrgs(path, parent: orgsParent?.real)
        }

        /// Whether the path as written (normalized, links not followed) stays out of other
        /// orgs' folders too: `data/globex` may be a link to somewhere else in the project.
        func allowsAsWritten(_ path: String) -> Bool {
            !isOtherOrgs(path, parent: orgsParent?.written)
        }

        /// A folder named like an org, beside the run's own in the orgs' parent, is another
        /// org's inputs.
        private func isOtherOrgs(_ path: String, parent: String?) -> Bool {
            guard let parent, let own = orgsParent?.own, Self.isWithin(path, parent), path != parent else { return false }
            let first = path.dropFirst(parent == "/" ? 1 : parent.count + 1).split(separator: "/").first.map(String.init) ?? ""
            return first != own && Identifier.isValid(first)
        }

        static func isWithin(_ path: String, _ folder: String) -> Bool {
            folder == "/" || path == folder || path.hasPrefix(folder + "/")
        }
    }

    /// The roots, real paths all; nil when the project folder itself can't be resolved.
    func allowedRoots() -> Roots? {
        guard let projectRoot = Self.realPath(project.root.path) else { return nil }
        let state = project.stateFolder
        var roots = Roots(project: projectRoot, state: Self.realPath(state.path) ?? projectRoot + "/" + state.lastPathComponent)
        if let template = project.settings.inputRoot {
            let written = template.hasPrefix("/") ? template : project.root.path + "/" + template
            roots.org = Self.realPath(written.replacingOccurrences(of: ProjectSettings.orgPlaceholder, with: org))
            let components = written.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            if let index = components.firstIndex(of: ProjectSettings.orgPlaceholder) {
                let parent = Self.normalized(components[..<index].joined(separator: "/"))
                // A parent that can't be resolved holds nothing to read, and one outside the
                // project holds nothing the project rule lets in: nothing to keep out then.
                if let real = Self.resolve(parent)?.path, Roots.isWithin(real, projectRoot) {
                    roots.orgsParent = (real, parent, org)
                }
            }
        }
        return roots
    }

    // MARK: Opening

    /// Opens the checked real path one component at a time, following no symlink: a folder
    /// swapped for a link after the check makes the open fail instead of leaving the roots.
    private func openWithoutFollowing(_ path: String) throws(StepFailure) -> InputFile {
        let components = path.split(separator: "/").map(String.init)
        var folder = openat(AT_FDCWD, "/", Self.folderFlags)
        guard folder >= 0, let last = components.last else { throw unreadable(errno) }
        for component in components.dropLast() {
            let next = openat(folder, component, Self.folderFlags)
            let code = errno
            close(folder)
            guard next >= 0 else { throw unreadable(code) }
            folder = next
        }
        let file = openat(folder, last, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        let code = errno
        close(folder)
        guard file >= 0 else { throw unreadable(code) }
        return try InputFile(descriptor: file, file: given)
    }

    private static let folderFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC

    private func unreadable(_ code: Int32) -> StepFailure {
        switch code {
        case ENOENT: return StepFailure(.missingInput, "input file \(shown(given)) does not exist", at: location)
        // Something along the path became a symlink after it was checked.
        case ELOOP, ENOTDIR: return refused("it changed while it was being opened")
        default: return StepFailure(.unreadableInput, "can't open input file \(shown(given)): \(String(cString: strerror(code)))", at: location)
        }
    }
}
