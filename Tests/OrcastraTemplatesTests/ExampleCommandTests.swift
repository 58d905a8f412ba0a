import Foundation
import Testing
@testable import OrcastraTemplates

/// Runs the ETL example's commands the way the stock worker does (input JSON
/// on stdin, result JSON on stdout), so the example cannot rot.
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")), .timeLimit(.minutes(3)))
struct ExampleCommandTests {
    func run(_ command: CommandSpec, input: JSONValue) throws -> JSONValue {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command.argv
        var environment = ProcessInfo.processInfo.environment
        environment.merge(command.env) { _, new in new }
        process.environment = environment
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.jsonText.utf8))
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return try JSONValue(parsing: String(decoding: output, as: UTF8.self))
    }

    func command(_ template: WorkflowTemplate, _ name: String) throws -> CommandSpec {
        guard case .command(let spec) = try #require(template.step(named: name)).action else {
            throw CancellationError()
        }
        return spec
    }

    @Test func etlStepsRunAndChainTheirResults() throws {
        let template = try TemplateParser.parse(yaml: try Fixtures.text("good/etl.yaml"), file: "etl.yaml")
        let context: JSONValue = ["currency": "EUR", "orders": [
            ["id": 1, "region": "north", "amount": 10.5],
            ["id": 2, "region": "south", "amount": 4],
            ["id": 3, "region": "north", "amount": 2],
            ["id": 4, "region": "south", "amount": -1],
        ]]
        #expect(template.inputSchema?.validate(context) == [])
        let extract = try run(command(template, "extract"), input: ["context": context, "parents": [:]])
        let transform = try run(command(template, "transform"), input: ["context": context, "parents": ["extract": extract]])
        #expect(transform == ["currency": "EUR", "regions": [
            "north": ["orders": 2, "amount": 12.5], "south": ["orders": 1, "amount": 4],
        ]])
        let load = try run(command(template, "load"), input: ["context": context, "parents": ["transform": transform]])
        #expect(load == ["regions": 2, "total": 16.5, "currency": "EUR", "summary": "2 regions, 16.50 EUR"])
    }
}
