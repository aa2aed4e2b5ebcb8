import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization

/// A real HTTP request over loopback (URLSession), waited for with a timeout.
struct HTTPAnswer: Sendable {
    var status: Int
    var contentType: String?
    var body: String
}

struct HTTPFailed: Error, CustomStringConvertible {
    var description: String
}

private final class AnswerBox: Sendable {
    let value = Mutex<Result<HTTPAnswer, HTTPFailed>?>(nil)
}

func httpRequest(_ url: String, method: String = "GET", timeout: Double = 60) throws -> HTTPAnswer {
    guard let u = URL(string: url) else { throw HTTPFailed(description: "bad URL \(url)") }
    var request = URLRequest(url: u)
    request.httpMethod = method
    request.timeoutInterval = timeout
    let box = AnswerBox()
    let done = DispatchSemaphore(value: 0)
    let task = URLSession.shared.dataTask(with: request) { data, response, error in
        let r: Result<HTTPAnswer, HTTPFailed>
        if let error {
            r = .failure(HTTPFailed(description: "\(url): \(error)"))
        } else if let h = response as? HTTPURLResponse {
            r = .success(HTTPAnswer(status: h.statusCode, contentType: h.value(forHTTPHeaderField: "Content-Type"),
                                    body: String(decoding: data ?? Data(), as: UTF8.self)))
        } else {
            r = .failure(HTTPFailed(description: "\(url): no HTTP response"))
        }
        box.value.withLock { $0 = r }
        done.signal()
    }
    task.resume()
    guard done.wait(timeout: .now() + timeout + 5) == .success else { throw HTTPFailed(description: "\(url): no answer in \(timeout) s") }
    return try box.value.withLock { $0! }.get()
}
