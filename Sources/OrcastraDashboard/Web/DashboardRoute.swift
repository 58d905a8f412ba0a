import HTTPTypes

/// The dashboard's stable paths (docs/dashboard.md). Anything else goes on to the API.
enum DashboardRoute: Equatable, Sendable {
    case asset(String)
    case login, logout
    case overview
    case tasks
    case task(String)
    case taskAction(String, TaskAction)
    case step(String)
    case stepAction(String, StepAction)
    case templates
    case template(namespace: String, name: String, version: String)
    case schedules, workers

    enum TaskAction: String, Sendable { case cancel, retry }
    enum StepAction: String, Sendable { case retry, resolve }

    /// Nil for a path that is not the dashboard's (`/v1/…`, `/healthz`, `/metrics`).
    init?(path: String) {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true).map { $0.removingPercentEncoding ?? String($0) }
        switch segments.count {
        case 0: self = .overview
        case 1:
            switch segments[0] {
            case "login": self = .login
            case "logout": self = .logout
            case "tasks": self = .tasks
            case "templates": self = .templates
            case "schedules": self = .schedules
            case "workers": self = .workers
            default: return nil
            }
        case 2:
            switch segments[0] {
            case "assets": self = .asset(segments[1])
            case "tasks": self = .task(segments[1])
            case "steps": self = .step(segments[1])
            default: return nil
            }
        case 3:
            if segments[0] == "tasks", let action = TaskAction(rawValue: segments[2]) {
                self = .taskAction(segments[1], action)
            } else if segments[0] == "steps", let action = StepAction(rawValue: segments[2]) {
                self = .stepAction(segments[1], action)
            } else {
                return nil
            }
        case 4 where segments[0] == "templates":
            self = .template(namespace: segments[1], name: segments[2], version: segments[3])
        default: return nil
        }
    }

    /// The methods the route answers; others get 405.
    var methods: [HTTPRequest.Method] {
        switch self {
        case .login, .taskAction, .stepAction: [.get, .post]
        case .logout: [.post]
        default: [.get]
        }
    }

    /// Open without a session.
    var isPublic: Bool {
        switch self {
        case .asset, .login: true
        default: false
        }
    }
}

import Foundation
