import Foundation
import Testing
import PrecisLauncher
import PrecisTrain
#if canImport(Glibc)
import Glibc
#endif

/// RUN_DIR/cluster.json and RUN_DIR/NAME.pid written and read back.
@Suite struct ClusterStateTests {
    static let sample = ClusterState(
        clusterFile: "cluster/hosts.yaml", config: "configs/train-samsum.yaml", runDir: "run", binDir: ".build/release",
        endpoint: "tcp://10.0.0.1:5555", started: "2025-01-02T03:04:05Z",
        processes: [
            ProcessRecord(name: "coordinator", role: .coordinator, host: "10.0.0.1", pid: 100, log: "run/coordinator.log",
                          pidFile: "run/coordinator.pid"),
            ProcessRecord(name: "ps0", role: .server, host: "10.0.0.2", ssh: "user@node2", workdir: "/srv/precis", pid: 200,
                          log: "run/ps0.log", pidFile: "run/ps0.pid"),
            ProcessRecord(name: "w7", role: .worker, host: "10.0.0.2", ssh: "user@node2", workdir: "/srv/precis", pid: 201,
                          log: "run/w7.log", pidFile: "run/w7.pid", threads: 4, leaving: true),
        ])

    @Test func theStateFileRoundTrips() throws {
        let dir = Scratch.directory("state")
        let path = ClusterState.path(runDir: dir)
        #expect(path == dir + "/cluster.json")
        #expect(try ClusterState.load(path) == nil, "no file: no state")
        try Self.sample.save(path)
        #expect(try ClusterState.load(path) == Self.sample)

        // The file's keys, as other tools (and older runs of precis) read them.
        let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        #expect(Set(obj.keys) == ["cluster_file", "config", "run_dir", "bin_dir", "endpoint", "started", "processes"])
        let procs = obj["processes"] as! [[String: Any]]
        #expect(procs.map { $0["role"] as? String } == ["coordinator", "ps", "worker"])
        #expect(procs[0]["ssh"] is NSNull, "ssh is null for this machine")
        #expect(procs[0]["workdir"] == nil && procs[0]["leaving"] == nil && procs[0]["threads"] == nil)
        #expect(procs[1]["pid_file"] as? String == "run/ps0.pid")
        #expect(procs[1]["leaving"] == nil)
        #expect(procs[2]["leaving"] as? Bool == true && (procs[2]["threads"] as? NSNumber)?.intValue == 4)
        #expect(Scratch.text(path).hasSuffix("}\n"))
    }

    @Test func aStateFileThatDoesNotDecodeIsAnErrorNamingIt() throws {
        let dir = Scratch.directory("badstate")
        let path = dir + "/cluster.json"
        try "{\"processes\": 3}".write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try ClusterState.load(path)
            Issue.record("a broken state file loaded")
        } catch let e as LaunchError {
            guard case .badStateFile(let p, _) = e else { Issue.record("\(e)"); return }
            #expect(p == path)
            #expect("\(e)".hasPrefix("\(path): not a cluster state file ("))
            #expect("\(e)".hasSuffix("remove it if no cluster is running"))
        }
    }

    /// cluster.json and a pid file that are a FIFO or a link to /dev/zero are not read (reading one
    /// would block, or fill memory, for ever): the state file is an error naming it, the pid file no pid.
    @Test func stateAndPidFilesThatAreNotRegularAreNotRead() throws {
        let dir = Scratch.directory("special")
        let state = ClusterState.path(runDir: dir), pid = dir + "/w0.pid"
        for special in ["fifo", "/dev/zero"] {
            for path in [state, pid] {
                if special == "fifo" { #expect(mkfifo(path, 0o600) == 0) }
                else { try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: special) }
            }
            #expect(throws: LaunchError.badStateFile(path: state, reason: "not a regular file")) { _ = try ClusterState.load(state) }
            #expect(PidFile.read(pid) == nil)
            for path in [state, pid] { try FileManager.default.removeItem(atPath: path) }
        }
    }

    /// A state file that does not describe what `up` starts is refused before anything acts on it:
    /// `down` would otherwise signal its pids and remove its pid files, `status` run ssh with its
    /// destinations.
    @Test func aStateFileThatCouldMisleadDownIsRefused() throws {
        let dir = Scratch.directory("forged")
        let path = dir + "/cluster.json"
        func refusal(_ edit: (inout ProcessRecord) -> Void) throws -> String? {
            var state = Self.sample
            edit(&state.processes[1])
            try state.save(path)
            do { _ = try ClusterState.load(path); return nil } catch let LaunchError.badStateFile(p, reason) {
                #expect(p == path)
                return reason
            }
        }
        #expect(try refusal { _ in } == nil)
        let cases: [((inout ProcessRecord) -> Void, String)] = [
            ({ $0.ssh = "-oProxyCommand=touch /tmp/p" }, "ssh '-oProxyCommand=touch /tmp/p' starts with '-'"),
            ({ $0.host = "a b" }, "host 'a b' holds blanks"),
            ({ $0.pidFile = "/home/user" }, "pid_file '/home/user' is not run/ps0.pid"),
            ({ $0.log = "/dev/zero" }, "log '/dev/zero' is not run/ps0.log"),
            ({ $0.workdir = "-P" }, "workdir '-P' starts with '-'"),
            ({ $0.pid = -1 }, "pid -1 is not a process of its own"),
            ({ $0.pid = 1 }, "pid 1 is not a process of its own"),
            ({ $0.name = "w9223372036854775807"; $0.role = .worker }, "'w9223372036854775807' (worker) is not a process"),
            ({ $0.name = "w1" }, "'w1' (ps) is not a process"),
            ({ $0.name = "coordinator"; $0.role = .coordinator }, "'coordinator' is listed twice"),
            ({ $0.started = "x:1; reboot" }, "started 'x:1; reboot' is not BOOT_ID:TICKS"),
        ]
        for (edit, why) in cases {
            let reason = try refusal(edit)
            #expect(reason?.contains(why) == true, "\(why): \(reason ?? "accepted")")
        }
    }

    /// The tail of a log is read from its end (a long run's log is not read whole), and a FIFO in
    /// its place gives nothing at once instead of blocking `status`.
    @Test func aLogTailReadsTheEndOnly() throws {
        let dir = Scratch.directory("tail")
        let launcher = Launcher(runDir: dir, binDir: dir)
        let log = dir + "/w0.log"
        let line = String(repeating: "x", count: 99) + "\n"
        try (String(repeating: line, count: 20_000) + "last words\n").write(toFile: log, atomically: true, encoding: .utf8)
        let record = ProcessRecord(name: "w0", role: .worker, host: "127.0.0.1", pid: 2, log: log, pidFile: dir + "/w0.pid")
        #expect(launcher.logTail(record, lines: 2) == [String(line.dropLast()), "last words"])
        try FileManager.default.removeItem(atPath: log)
        #expect(mkfifo(log, 0o600) == 0)
        #expect(launcher.logTail(record).isEmpty)
    }

    @Test func recordsNameWhereToFindAProcess() {
        let p = Self.sample.processes
        #expect(p[0].logLocation == "run/coordinator.log")
        #expect(p[1].logLocation == "user@node2:/srv/precis/run/ps0.log")
        #expect(p[2].index == 7 && p[1].index == 0 && p[0].index == -1)
        #expect(p[2].label == "w7 (pid 201)")
        #expect(!p[0].isRemote && p[1].isRemote)
    }

    @Test func pidFilesRoundTripAndNameTheirProcesses() throws {
        let dir = Scratch.directory("pids")
        try PidFile.write(4321, to: dir + "/coordinator.pid")
        try PidFile.write(4322, to: dir + "/ps0.pid")
        try PidFile.write(4323, to: dir + "/w1.pid")
        try "not a pid\n".write(toFile: dir + "/w2.pid", atomically: true, encoding: .utf8)
        try "12\n".write(toFile: dir + "/w1.log", atomically: true, encoding: .utf8)
        #expect(Scratch.text(dir + "/ps0.pid") == "4322\n")
        #expect(PidFile.read(dir + "/w1.pid") == 4323)
        #expect(PidFile.read(dir + "/w2.pid") == nil)
        #expect(PidFile.read(dir + "/none.pid") == nil)
        let records = PidFile.records(in: dir)
        #expect(records.map(\.name) == ["coordinator", "ps0", "w1"])
        #expect(records.map(\.role) == [.coordinator, .server, .worker])
        #expect(records.map(\.pid) == [4321, 4322, 4323])
        #expect(records[2].log == dir + "/w1.log" && records[2].pidFile == dir + "/w1.pid" && records[2].ssh == nil)
        #expect(PidFile.records(in: dir + "/missing").isEmpty)
    }
}

/// `BOOT_ID:TICKS` from /proc's text: the start time is field 22 of /proc/PID/stat, counted after
/// the last ')' (a command may hold blanks and parentheses).
@Suite struct ProcessIdentityTests {
    @Test func theStartTimeIsField22CountedAfterTheCommand() {
        let fields = (3...52).map { $0 == 22 ? "987654" : "\($0)" }.joined(separator: " ")
        let boot = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0\n"
        #expect(ProcessIdentity.make(boot: boot, stat: "4242 (precis) x) ) " + fields) == "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0:987654")
        #expect(ProcessIdentity.make(boot: boot, stat: "4242 (w0) 3 4") == nil, "too few fields")
        #expect(ProcessIdentity.make(boot: "", stat: "4242 (w0) " + fields) == nil)
        #expect(ProcessIdentity.parse("0b1c-2d:12\n") == "0b1c-2d:12")
        for bad in [":12", "0b1c:", "0b1c:x", "a:1:2", "zz:1", "$(reboot):1"] { #expect(ProcessIdentity.parse(bad) == nil, "\(bad)") }
        // This process, as the launcher records its children.
        let me = ProcessIdentity.of(getpid())
        #expect(me != nil && me == ProcessIdentity.of(getpid()) && me!.hasPrefix((ProcessIdentity.bootID ?? "?") + ":"))
    }
}
