import Foundation
import Testing
import PrecisLauncher
#if canImport(Glibc)
import Glibc
#endif

/// Real child processes (shell scripts): started, watched to their exit, stopped, read line by line.
@Suite struct ChildProcessTests {
    @Test func watchesAProcessUntilItExitsWithItsStatus() throws {
        let dir = Scratch.directory("exit")
        let s = try Scratch.script(dir + "/exit3.sh", "while [ ! -f \"$1\" ]; do sleep 0.02; done\nexit 3\n")
        let child = try ChildProcess([s, dir + "/go"])
        #expect(child.pid > 0)
        #expect(child.isRunning)
        #expect(child.exitStatus == nil)
        #expect(child.wait(timeout: 0.1) == nil, "it waits for the go file")
        Scratch.touch(dir + "/go")
        #expect(child.wait(timeout: 30) == .exited(3))
        #expect(!child.isRunning)
        #expect(child.exitStatus?.code == 3)
    }

    @Test func aProcessKilledByASignalEndsSignaled() throws {
        let dir = Scratch.directory("signaled")
        let s = try Scratch.script(dir + "/self-kill.sh", "kill -KILL $$\n")
        let child = try ChildProcess([s])
        #expect(child.wait() == .signaled(SIGKILL))
        #expect(child.exitStatus?.code == 128 + SIGKILL)
    }

    @Test func aMissingProgramIsAnErrorNamingIt() {
        #expect(throws: LaunchError.self) { try ChildProcess(["/nonexistent/precis-worker"]) }
        do { _ = try ChildProcess(["/nonexistent/precis-worker"]) } catch {
            #expect("\(error)".contains("could not start /nonexistent/precis-worker"), "\(error)")
        }
    }

    @Test func stopEndsAProcessThatExitsOnSIGTERM() throws {
        let dir = Scratch.directory("term")
        let s = try Scratch.script(dir + "/polite.sh", """
            trap 'echo term > "$1.got"; exit 7' TERM
            touch "$1.ready"
            while :; do sleep 0.05; done

            """)
        let child = try ChildProcess([s, dir + "/p"])
        #expect(Scratch.eventually { FileManager.default.fileExists(atPath: dir + "/p.ready") })
        let started = Date()
        #expect(child.stop(timeout: 60) == .exited(7), "SIGTERM ends it through its trap")
        #expect(Date().timeIntervalSince(started) < 60)
        #expect(Scratch.text(dir + "/p.got") == "term\n")
    }

    @Test func stopKillsAProcessThatIgnoresSIGTERMAfterTheTimeout() throws {
        let dir = Scratch.directory("kill")
        let s = try Scratch.script(dir + "/stubborn.sh", """
            trap '' TERM
            touch "$1.ready"
            while :; do sleep 0.05; done

            """)
        let child = try ChildProcess([s, dir + "/s"])
        #expect(Scratch.eventually { FileManager.default.fileExists(atPath: dir + "/s.ready") })
        let started = Date()
        #expect(child.stop(timeout: 0.5) == .signaled(SIGKILL))
        #expect(Date().timeIntervalSince(started) >= 0.5, "SIGKILL only after the timeout")
    }

    @Test func stoppingSeveralKillsOnlyThoseStillRunning() throws {
        let dir = Scratch.directory("several")
        let polite = try Scratch.script(dir + "/polite.sh", "trap 'exit 0' TERM\ntouch \"$1\"\nwhile :; do sleep 0.05; done\n")
        let stubborn = try Scratch.script(dir + "/stubborn.sh", "trap '' TERM\ntouch \"$1\"\nwhile :; do sleep 0.05; done\n")
        let a = try ChildProcess([polite, dir + "/a"]), b = try ChildProcess([stubborn, dir + "/b"])
        #expect(Scratch.eventually { ["a", "b"].allSatisfy { FileManager.default.fileExists(atPath: dir + "/" + $0) } })
        // 3 s: the polite one exits after its `sleep 0.05` returns and `sh` runs the trap, which on a
        // loaded machine can take longer than a fraction of a second; the stubborn one waits it out.
        let killed = ChildProcess.stop([a, b], timeout: 3)
        #expect(killed.map(\.pid) == [b.pid])
        #expect(a.exitStatus == .exited(0))
        #expect(b.exitStatus == .signaled(SIGKILL))
    }

    @Test func attachedOutputReachesTheLineHandlerLineByLine() throws {
        let dir = Scratch.directory("lines")
        let s = try Scratch.script(dir + "/talk.sh", """
            echo one
            printf 'two\\nthr'
            while [ ! -f "$1" ]; do sleep 0.02; done
            printf 'ee\\n'
            echo 'to stderr' >&2
            printf 'no newline at the end'

            """)
        let child = try ChildProcess([s, dir + "/go"], output: .lines)
        var lines: [String] = []
        var ended = false
        // Until the go file exists the script has written "one\ntwo\nthr": two whole lines.
        #expect(Scratch.eventually {
            ended = child.readLines(timeout: 0.05) { lines.append($0) }
            return lines.count >= 2 || ended
        })
        #expect(!ended, "the output has not ended while the script waits")
        #expect(lines == ["one", "two"], "a partial line is held back until its newline")
        Scratch.touch(dir + "/go")
        #expect(child.readLines { lines.append($0) }, "reads to the end of the output")
        #expect(lines == ["one", "two", "three", "to stderr", "no newline at the end"])
        #expect(child.wait(timeout: 30) == .exited(0))
    }

    @Test func errorsCanGoToAFileWhileOutputComesAsLines() throws {
        let dir = Scratch.directory("errors")
        let s = try Scratch.script(dir + "/both.sh", "echo out1\necho err1 >&2\necho out2\n")
        let child = try ChildProcess([s], output: .lines, errors: .file(dir + "/err.log"))
        var lines: [String] = []
        child.readLines { lines.append($0) }
        #expect(child.wait() == .exited(0))
        #expect(lines == ["out1", "out2"])
        #expect(Scratch.text(dir + "/err.log") == "err1\n")
    }

    @Test func aDetachedProcessHasASessionOfItsOwnAndWritesItsLog() throws {
        let dir = Scratch.directory("detached")
        let s = try Scratch.script(dir + "/daemon.sh", "echo started\nwhile [ ! -f \"$1\" ]; do sleep 0.02; done\necho done\n")
        let detached = try ChildProcess([s, dir + "/go"], output: .file(dir + "/d.log"), detached: true)
        let attached = try ChildProcess([s, dir + "/go"], output: .file(dir + "/a.log"))
        #expect(getsid(detached.pid) == detached.pid, "a new session, led by the process")
        #expect(getsid(attached.pid) == getsid(0), "an attached one stays in this session")
        #expect(getpgid(attached.pid) == getpgid(0), "and in this process group (Ctrl-C reaches it)")
        Scratch.touch(dir + "/go")
        #expect(detached.wait(timeout: 30) == .exited(0))
        #expect(attached.wait(timeout: 30) == .exited(0))
        #expect(Scratch.text(dir + "/d.log") == "started\ndone\n")
    }

    @Test func runCommandCapturesOutputAndStatus() throws {
        let r = runCommand(["sh", "-c", "echo out; echo err >&2; exit 4"])
        #expect(r == CommandResult(status: 4, out: "out\n", err: "err\n"))
        let missing = runCommand(["/nonexistent/ssh", "host", "true"])
        #expect(missing.status == 127 && missing.err.hasPrefix("could not run /nonexistent/ssh"), "\(missing)")
        // Something left running in the background with the pipes open does not hold it up.
        let started = Date()
        let bg = runCommand(["sh", "-c", "sleep 5 & echo $!"])
        #expect(bg.status == 0)
        #expect(Date().timeIntervalSince(started) < 4.5)
        if let pid = Int32(bg.out.trimmingCharacters(in: .whitespacesAndNewlines)) { kill(pid, SIGKILL) }
    }
}
