/// A template's `concurrency: {key: "$.context.customer_id", limit: 1}`: at most `limit` tasks of
/// this template (any version) with the same key run at once; the others wait as `pending` and
/// start in creation order as slots free.
///
/// The key is a jsonpath evaluated by PostgreSQL (`jsonb_path_query_first`) over
/// `{"context": <the task's context>}` when the task is created. `template validate` runs without
/// a database, so the path's syntax is checked here (``JSONPathSyntax``) for the subset a key
/// needs; PostgreSQL's own parser is the final word at registration.
public struct TaskConcurrency: Sendable, Hashable, Codable {
    public var key: String
    public var limit: Int

    public init(key: String, limit: Int) {
        self.key = key
        self.limit = limit
    }
}
