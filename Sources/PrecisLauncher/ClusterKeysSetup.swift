import Foundation
import PrecisCore
import PrecisTrain
import PrecisWire

/// The keys of a cluster the launcher starts: RUN_DIR/keys on this machine (`precis keys generate`
/// writes it when missing), copied to every remote host over the same ssh the launcher starts
/// roles with — the public certificates and `authorized_keys` everywhere, and to each host only the
/// secrets of the roles it runs (mode 0600, in a folder of mode 0700). The operator's secret stays
/// here: `precis cluster status` uses it.
extension ClusterOperations {
    /// RUN_DIR/keys, as every host sees it (relative to its working directory).
    public var keysDir: String { runDir + "/keys" }

    /// Creates the keys when missing; returns the folder.
    func prepareKeys() throws -> String {
        if !FileManager.default.fileExists(atPath: ClusterKeys.authorizedFile(keysDir)) {
            let files = try ClusterKeys.generate(into: keysDir)
            say("wrote the cluster's keys to \(keysDir) (\(files.count) files; secrets mode 0600)")
        }
        return keysDir
    }

    /// The roles whose secrets `host` needs.
    func secretRoles(of host: ClusterFile.Host) -> [KeyRole] {
        var roles: [KeyRole] = []
        if host.address == spec.coordinatorHost { roles.append(.coordinator) }
        if host.servers > 0 { roles.append(.server) }
        if host.workers > 0 { roles.append(.worker) }
        return roles
    }

    /// Copies the keys to every remote host (once per ssh destination and working directory).
    func distributeKeys() throws {
        var hosts = spec.hosts.filter(\.isRemote)
        if let c = spec.coordinatorHostEntry, c.isRemote, !hosts.contains(c) { hosts.append(c) }
        var done = Set<String>()
        for h in hosts {
            guard let dest = h.ssh else { continue }
            let key = dest + "\u{0}" + launcher.workdir(h)
            let roles = Set(hosts.filter { ($0.ssh ?? "") + "\u{0}" + launcher.workdir($0) == key }.flatMap(secretRoles))
            guard done.insert(key).inserted else { continue }
            var files = KeyRole.allCases.map { ClusterKeys.publicFile(keysDir, $0) } + [ClusterKeys.authorizedFile(keysDir)]
            files += KeyRole.allCases.filter(roles.contains).map { ClusterKeys.secretFile(keysDir, $0) }
            // One ssh call per file, its text on stdin (a secret never appears on a command line).
            for f in files {
                let bytes: Data
                do { bytes = try SmallFile.read(f, limit: 1 << 20) } catch {
                    throw LaunchError.hostNotReady(host: h.address, ssh: dest, reason: "cannot read \(f): \(error)")
                }
                let mode = f.hasSuffix(".key_secret") ? "600" : "644"
                let script = "cd \(shellQuote(launcher.workdir(h))) || exit 3; umask 077; mkdir -p \(shellQuote(keysDir)) && "
                    + "chmod 700 \(shellQuote(keysDir)) && cat > \(shellQuote(f)) && chmod \(mode) \(shellQuote(f))"
                let r = launcher.shell.run(dest, script, input: Array(bytes))
                if r.status != 0 {
                    throw LaunchError.hostNotReady(host: h.address, ssh: dest,
                                                   reason: "copying \(f) failed: \((r.out + r.err).trimmingCharacters(in: .whitespacesAndNewlines))")
                }
            }
            let shown = keysDir.hasPrefix("/") ? keysDir : launcher.workdir(h) + "/" + keysDir
            say("keys copied to \(dest):\(shown) (secrets: \(KeyRole.allCases.filter(roles.contains).map(\.rawValue).joined(separator: ", ")))")
        }
    }

    /// The operator's keys for status queries, when this cluster has keys.
    func operatorKeys() throws -> ClusterKeys? {
        guard FileManager.default.fileExists(atPath: ClusterKeys.secretFile(keysDir, .operator)) else { return nil }
        return try ClusterKeys.load(dir: keysDir, role: .operator)
    }
}
