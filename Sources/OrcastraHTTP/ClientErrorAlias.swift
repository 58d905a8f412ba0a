import OrcastraClient

/// OrcastraClient's `ClientError`, named apart from OpenAPIRuntime's (the module and its main
/// type share a name, so `OrcastraClient.ClientError` cannot say it).
typealias OrcastraClientError = ClientError
