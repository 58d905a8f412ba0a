import HTTPTypes
import Hummingbird

/// The stylesheet and the script, served from `/assets/` with the page's security headers. They
/// are constants of the binary; the query string (`?v=`) is not needed as they are revalidated.
enum DashboardAssets {
    static func response(_ name: String) -> Response {
        let (type, text): (String, String)
        switch name {
        case "dashboard.css": (type, text) = ("text/css; charset=utf-8", DashboardStyle.css)
        case "dashboard.js": (type, text) = ("text/javascript; charset=utf-8", DashboardScript.js)
        default:
            return Dashboard.htmlResponse(.notFound, "<!doctype html><title>Not found</title><p>No such asset.</p>")
        }
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "public, max-age=300"
        Dashboard.secure(&headers)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
