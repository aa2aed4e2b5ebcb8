import Foundation
import PrecisTrain
import Testing
import PrecisLauncher

/// The launcher on this machine: stand-in role executables (shell scripts named precis-coordinator,
/// precis-ps, precis-worker) started detached, watched, and stopped in role order.
@Suite struct LauncherTests {
    /// A bin folder of stand-in roles that append their name to `dir/order` on SIGTERM.
    static func fakeBin(_ dir: String, stubbornServer: Bool = false) throws -> String {
        let bin = dir + "/bin"
        for role in Role.allCases {
            try Scratch.fakeRole(at: bin + "/" + role.executable, order: dir + "/order", ignoreTerm: stubbornServer && role == .server)
        }
        return bin
    }

    @Test func startsARoleDetachedWithItsPidFileAndLog() throws {
        let dir = Scratch.directory("start")
        let bin = try Self.fakeBin(dir)
        let launcher = Launcher(runDir: dir + "/run", binDir: bin, here: dir)
        let host = ClusterFile.Host(address: "127.0.0.1", workers: 1, threadsPerWorker: 2)
        let w = try launcher.start(.worker(coordinator: "tcp://127.0.0.1:5555", name: "w0", host: host.address, threads: 2),
                                   name: "w0", on: host, threads: 2)
        #expect(w.name == "w0" && w.role == .worker && w.host == "127.0.0.1" && w.ssh == nil && w.workdir == nil && w.threads == 2)
        #expect(w.log == dir + "/run/w0.log" && w.pidFile == dir + "/run/w0.pid")
        #expect(PidFile.read(w.pidFile) == w.pid)
        #expect(getsid(w.pid) == w.pid, "detached: a session of its own")
        #expect(Scratch.eventually { Scratch.text(w.log) == "started --coordinator tcp://127.0.0.1:5555 --host 127.0.0.1 --name w0 --threads 2\n" },
                "\(Scratch.text(w.log))")
        #expect(launcher.liveness([w]).map(\.1) == [.alive])
        #expect(launcher.logTail(w) == ["started --coordinator tcp://127.0.0.1:5555 --host 127.0.0.1 --name w0 --threads 2"])
        // Which process the pid is was recorded at the start: a record naming another start (the pid
        // reused since) is dead to status, and down leaves that process alone.
        let boot = try #require(ProcessIdentity.bootID)
        let started = try #require(w.started)
        #expect(started.hasPrefix(boot + ":") && started != boot + ":")
        var reused = w
        reused.started = boot + ":1"
        #expect(launcher.liveness([reused]).map(\.1) == [.dead])
        #expect(!launcher.stop([reused], timeout: 1))
        #expect(launcher.liveness([w]).map(\.1) == [.alive])

        var events: [Launcher.StopEvent] = []
        #expect(launcher.stop([w], timeout: 30) { events.append($0) })
        #expect(events == [.terminated([w])])
        #expect(launcher.liveness([w]).map(\.1) == [.dead])
        #expect(Scratch.text(dir + "/order") == "w0\n")
        launcher.removePidFiles([w])
        #expect(!FileManager.default.fileExists(atPath: w.pidFile))
        #expect(!launcher.stop([w], timeout: 1), "nothing left to stop")
    }

    @Test func aRelativeBinDirIsTakenFromTheLaunchDirectory() {
        let launcher = Launcher(runDir: "run", binDir: ".build/release", here: "/srv/precis")
        #expect(launcher.executable(.server, remote: false) == "/srv/precis/.build/release/precis-ps")
        #expect(launcher.executable(.server, remote: true) == ".build/release/precis-ps")
        #expect(Launcher(runDir: "run", binDir: "/opt/bin", here: "/x").executable(.worker, remote: false) == "/opt/bin/precis-worker")
        #expect(launcher.workdir(ClusterFile.Host(address: "a", ssh: "n")) == "/srv/precis")
        #expect(launcher.workdir(ClusterFile.Host(address: "a", ssh: "n", workdir: "/data/precis")) == "/data/precis")
    }

    @Test func stopsWorkersThenServersThenTheCoordinator() throws {
        let dir = Scratch.directory("order")
        let bin = try Self.fakeBin(dir)
        let launcher = Launcher(runDir: dir + "/run", binDir: bin, here: dir)
        let here = ClusterFile.Host(address: "127.0.0.1")
        let co = try launcher.start(.coordinator(config: "c.yaml", bind: "tcp://127.0.0.1:*", endpointFile: dir + "/run/e"), name: "coordinator", on: here)
        let ps = try launcher.start(.server(coordinator: "tcp://127.0.0.1:1", name: "ps0"), name: "ps0", on: here)
        let w0 = try launcher.start(.worker(coordinator: "tcp://127.0.0.1:1", name: "w0"), name: "w0", on: here)
        let w1 = try launcher.start(.worker(coordinator: "tcp://127.0.0.1:1", name: "w1"), name: "w1", on: here)
        let all = [co, ps, w0, w1]
        #expect(Scratch.eventually { all.allSatisfy { Scratch.text($0.log).hasPrefix("started") } })
        #expect(launcher.liveness(all).allSatisfy { $0.1 == .alive })

        var events: [Launcher.StopEvent] = []
        #expect(launcher.stop(all, timeout: 30) { events.append($0) })
        #expect(events == [.terminated([w0, w1]), .terminated([ps]), .terminated([co])])
        let order = Scratch.text(dir + "/order").split(separator: "\n").map(String.init)
        #expect(order.count == 4 && Set(order.prefix(2)) == ["w0", "w1"] && order[2] == "ps0" && order[3] == "coordinator", "\(order)")
        #expect(launcher.liveness(all).allSatisfy { $0.1 == .dead })
    }

    @Test func aRoleThatIgnoresSIGTERMGetsSIGKILLAfterTheTimeout() throws {
        let dir = Scratch.directory("stubborn")
        let bin = try Self.fakeBin(dir, stubbornServer: true)
        let launcher = Launcher(runDir: dir + "/run", binDir: bin, here: dir)
        let here = ClusterFile.Host(address: "127.0.0.1")
        let ps = try launcher.start(.server(coordinator: "tcp://127.0.0.1:1", name: "ps0"), name: "ps0", on: here)
        let w0 = try launcher.start(.worker(coordinator: "tcp://127.0.0.1:1", name: "w0"), name: "w0", on: here)
        #expect(Scratch.eventually { [ps, w0].allSatisfy { Scratch.text($0.log).hasPrefix("started") } })
        var events: [Launcher.StopEvent] = []
        let started = Date()
        // 3 s: long enough for the worker's trap to run on a loaded machine (`sh` runs it only after
        // its `sleep 0.05` returns), and the server waits it out before SIGKILL.
        launcher.stop([ps, w0], timeout: 3) { events.append($0) }
        #expect(events == [.terminated([w0]), .terminated([ps]), .killed([ps], after: 3)])
        #expect(Date().timeIntervalSince(started) >= 3)
        #expect(launcher.liveness([ps, w0]).allSatisfy { $0.1 == .dead })
        #expect(Scratch.text(dir + "/order") == "w0\n", "only the worker ran its SIGTERM trap")
    }

    @Test func aPidNotRunningAPrecisProgramIsDead() throws {
        let dir = Scratch.directory("reused")
        // A live process whose command line does not say precis: a pid file pointing at a reused pid.
        let other = try ChildProcess(["/bin/sleep", "30"])
        defer { other.stop(timeout: 1) }
        let launcher = Launcher(runDir: dir, binDir: dir, here: dir)
        let record = ProcessRecord(name: "w0", role: .worker, host: "127.0.0.1", pid: other.pid, log: "w0.log", pidFile: "w0.pid")
        // posix_spawn returns while exec is still setting up the new command line (empty until then).
        #expect(Scratch.eventually { !Scratch.text("/proc/\(other.pid)/cmdline").isEmpty })
        #expect(launcher.liveness([record]).map(\.1) == [.dead])
        #expect(other.isRunning, "it runs, but not a Precis program")
    }
}
