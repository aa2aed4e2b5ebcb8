import Foundation
import PrecisTrain
import Testing
import PrecisLauncher

/// Hosts reached over ssh, with `PRECIS_SSH` pointing at a stand-in for ssh that records how it was
/// called and runs the script on this machine.
@Suite struct RemoteShellTests {
    @Test func precisSSHReplacesTheSSHCommand() {
        #expect(RemoteShell(environment: [:]).command == ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"])
        #expect(RemoteShell(environment: ["PRECIS_SSH": ""]).command == RemoteShell.defaultCommand)
        let custom = RemoteShell(environment: ["PRECIS_SSH": "/opt/fake-ssh -p 2222"])
        #expect(custom.command == ["/opt/fake-ssh", "-p", "2222"])
        #expect(custom.argv("user@node2", "cd /srv && true") == ["/opt/fake-ssh", "-p", "2222", "user@node2", "cd /srv && true"])
    }

    @Test func shellQuoting() {
        #expect(shellQuote("run/w0.log") == "run/w0.log")
        #expect(shellQuote("tcp://10.0.0.1:5555") == "tcp://10.0.0.1:5555")
        #expect(shellQuote("a b") == "'a b'")
        #expect(shellQuote("it's") == "'it'\\''s'")
        #expect(shellQuote("") == "''")
        #expect(runCommand(["sh", "-c", "printf '%s' " + shellQuote("$HOME 'x' `y`")]).out == "$HOME 'x' `y`")
    }

    /// A command can read given bytes on stdin (how the launcher copies secret keys over ssh).
    @Test func aCommandReadsItsInputOnStdin() {
        let text = "secret-key = \"x\"\n"
        #expect(runCommand(["cat"], input: Array(text.utf8)).out == text)
        #expect(runCommand(["cat"]).out == "")
    }

    /// A stand-in for ssh: appends DEST and SCRIPT to files in `dir`, then runs SCRIPT with /bin/sh here.
    static func fakeSSH(_ dir: String) throws -> RemoteShell {
        let path = try Scratch.script(dir + "/fake-ssh", """
            printf '%s\\n' "$1" >> \(dir)/ssh-destinations
            printf '%s\\n' "$2" >> \(dir)/ssh-scripts
            exec /bin/sh -c "$2"

            """)
        return RemoteShell(environment: ["PRECIS_SSH": path])
    }

    @Test func startsWatchesAndStopsARoleOnARemoteHost() throws {
        let dir = Scratch.directory("remote")
        let remote = dir + "/node2-checkout"
        try Scratch.fakeRole(at: remote + "/bin/precis-worker", order: dir + "/order")
        let launcher = Launcher(runDir: "run", binDir: "bin", here: dir + "/not-here", shell: try Self.fakeSSH(dir))
        let host = ClusterFile.Host(address: "10.77.0.2", ssh: "node2", workdir: remote, workers: 1, threadsPerWorker: 2)

        let w = try launcher.start(.worker(coordinator: "tcp://10.77.0.1:5555", name: "w0", host: host.address, threads: 2),
                                   name: "w0", on: host, threads: 2)
        #expect(Scratch.text(dir + "/ssh-destinations") == "node2\n")
        #expect(Scratch.text(dir + "/ssh-scripts") == "cd \(remote) && mkdir -p run && { setsid nohup bin/precis-worker "
                + "--coordinator tcp://10.77.0.1:5555 --host 10.77.0.2 --name w0 --threads 2 > run/w0.log 2>&1 < /dev/null & "
                + "p=$!; echo $p > run/w0.pid; \(ProcessIdentity.shellFunction); echo $p; pid_identity $p; }\n")
        #expect(w.ssh == "node2" && w.workdir == remote && w.host == "10.77.0.2" && w.log == "run/w0.log" && w.pidFile == "run/w0.pid")
        #expect(w.logLocation == "node2:\(remote)/run/w0.log")
        #expect(PidFile.read(remote + "/run/w0.pid") == w.pid, "the pid file is on the host")
        #expect(Scratch.eventually { Scratch.text(remote + "/run/w0.log").hasPrefix("started") })
        #expect(Scratch.text(remote + "/run/w0.log") == "started --coordinator tcp://10.77.0.1:5555 --host 10.77.0.2 --name w0 --threads 2\n")
        #expect(launcher.logTail(w) == ["started --coordinator tcp://10.77.0.1:5555 --host 10.77.0.2 --name w0 --threads 2"])
        #expect(launcher.liveness([w]).map(\.1) == [.alive])
        // The host said which process the pid is; a record naming another start is not this one
        // (the pid reused): dead to status, left alone by down.
        let boot = try #require(ProcessIdentity.bootID)
        let started = try #require(w.started, "no identity from the host")
        #expect(started.hasPrefix(boot + ":"), "\(started)")
        var reused = w
        reused.started = boot + ":1"
        #expect(launcher.liveness([reused]).map(\.1) == [.dead])
        #expect(!launcher.stop([reused], timeout: 1))
        #expect(launcher.liveness([w]).map(\.1) == [.alive])

        var events: [Launcher.StopEvent] = []
        #expect(launcher.stop([w], timeout: 30) { events.append($0) })
        #expect(events == [.terminated([w])])
        #expect(Scratch.text(dir + "/ssh-scripts").contains("kill -TERM \(w.pid) 2>/dev/null; true\n"))
        #expect(Scratch.text(dir + "/order") == "w0\n")
        #expect(launcher.liveness([w]).map(\.1) == [.dead])
        launcher.removePidFiles([w])
        #expect(Scratch.text(dir + "/ssh-scripts").hasSuffix("cd \(remote) && rm -f run/w0.pid\n"))
        #expect(!FileManager.default.fileExists(atPath: remote + "/run/w0.pid"))
        #expect(Set(Scratch.text(dir + "/ssh-destinations").split(separator: "\n")) == ["node2"], "every call went to node2")
    }

    @Test func anUnreachableHostIsUnknownNotDead() throws {
        let dir = Scratch.directory("unreachable")
        let ssh = try Scratch.script(dir + "/refusing-ssh", "echo \"ssh: connect to host $1 port 22: Connection refused\" >&2\nexit 255\n")
        var warnings: [String] = []
        let launcher = Launcher(runDir: "run", binDir: "bin", here: dir, shell: RemoteShell(environment: ["PRECIS_SSH": ssh]),
                                warn: { warnings.append($0) })
        let record = ProcessRecord(name: "w3", role: .worker, host: "10.77.0.9", ssh: "node9", workdir: "/srv", pid: 4242,
                                   log: "run/w3.log", pidFile: "run/w3.pid")
        #expect(launcher.liveness([record]).map(\.1) == [.unknown("ssh: connect to host node9 port 22: Connection refused")])
        launcher.signal([record], .term)
        #expect(warnings == ["warning: could not signal w3 on node9: ssh: connect to host node9 port 22: Connection refused"])

        let host = ClusterFile.Host(address: "10.77.0.9", ssh: "node9", workdir: "/srv", workers: 1)
        #expect(throws: LaunchError.remoteStartFailed(name: "w0", host: "10.77.0.9", ssh: "node9", status: 255,
                                                      output: "ssh: connect to host node9 port 22: Connection refused")) {
            _ = try launcher.start(.worker(coordinator: "tcp://10.77.0.1:5555", name: "w0"), name: "w0", on: host)
        }
    }
}
