import HTTPTypes
import Hummingbird

extension Dashboard {
    /// `GET /login` shows the form; `POST /login` checks the token (field `token`) and opens a
    /// session. The sign-in form has a CSRF token of its own (a short-lived cookie and the same
    /// value in a hidden field), so another site cannot sign a browser in to its own token.
    func login(_ method: HTTPRequest.Method, form: FormFields, query: FormFields, cookieHeader: String?) async throws -> Response {
        if method == .get {
            return loginForm(.ok, next: query["next"], error: nil)
        }
        guard let expected = Self.cookie(Self.loginCookie, in: cookieHeader), DashboardSessions.matches(form["csrf"], expected) else {
            return loginForm(.forbidden, next: form["next"],
                             error: "The sign-in form did not carry its CSRF token (or cookies are off): reload this page and sign in again.")
        }
        guard let token = form.nonEmpty("token") else {
            return loginForm(.badRequest, next: form["next"], error: "Paste an API token into the field “API token” (form field token).")
        }
        switch try await sessions.signIn(token: token) {
        case .failure(let refusal):
            return loginForm(.unauthorized, next: form["next"], error: refusal.description)
        case .success(let opened):
            var response = Self.redirect(Self.safeNext(form["next"]))
            response.headers[values: .setCookie] = [sessionCookie(opened.cookie, maxAge: Int(sessions.lifetime.components.seconds)),
                                                    clearedCookie(Self.loginCookie)]
            return response
        }
    }

    private func loginForm(_ status: HTTPResponse.Status, next: String?, error: String?) -> Response {
        let csrf = DashboardSessions.randomToken()
        var values: [String: Any] = ["csrf": csrf, "next": Self.safeNext(next)]
        if let error { values["error"] = error }
        var response = html(status, "login", values, title: "Sign in", session: nil)
        response.headers[values: .setCookie] = [
            "\(Self.loginCookie)=\(csrf); Path=/login; Max-Age=3600; HttpOnly; SameSite=Strict" + (secureCookies ? "; Secure" : ""),
        ]
        return response
    }

    /// Only a path of this site: `/tasks?x`, never `//other.example` or `https://…`.
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), !next.hasPrefix("/\\"), !next.contains("\r"), !next.contains("\n") else {
            return "/"
        }
        return next
    }
}
